// ESM entry of mcp-needs-auth/sdk: re-exports the CommonJS implementation (sdk.js).
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const sdk = require('./sdk.js');

export const {
  configDirFor,
  prepareQuery,
  needsAuthHooks,
  reconnectOnAuthChange,
  ReconnectSubscription,
  signIn,
  onServerStatus,
  ServerStatusSubscription,
  redialConnectors,
  redialConnectorsWhileLive,
  ConnectorRedial,
} = sdk;
export default sdk;
