//! The string unions of the public API, as napi string enums (the `.d.ts` unions are generated
//! from them), and how the core's enums map to them.

use napi_derive::napi;

use mcp_needs_auth_core::cache_file;
use mcp_needs_auth_core::credentials::CredentialSource;
use mcp_needs_auth_core::events;
use mcp_needs_auth_core::staleness::Staleness;

/// Why an `onAuthChanged` callback was called. `'invalidated'`: a host in this process called
/// `invalidateNeedsAuth`/`purgeStale`. `'credentials-changed'`: these servers' tokens changed in
/// the credentials store. `'cache-changed'`: another process added, changed or removed these
/// servers' entries.
#[napi(string_enum = "kebab-case")]
pub enum AuthChangeReason {
  Invalidated,
  CredentialsChanged,
  CacheChanged,
}

impl From<events::Reason> for AuthChangeReason {
  fn from(r: events::Reason) -> Self {
    match r {
      events::Reason::Invalidated => AuthChangeReason::Invalidated,
      events::Reason::CredentialsChanged => AuthChangeReason::CredentialsChanged,
      events::Reason::CacheChanged => AuthChangeReason::CacheChanged,
    }
  }
}

/// Which process made the change an event reports.
#[napi(string_enum = "kebab-case")]
pub enum AuthChangeSource {
  ThisProcess,
  OtherProcess,
}

impl From<events::Source> for AuthChangeSource {
  fn from(s: events::Source) -> Self {
    match s {
      events::Source::ThisProcess => AuthChangeSource::ThisProcess,
      events::Source::OtherProcess => AuthChangeSource::OtherProcess,
    }
  }
}

/// Where credentials are read from. `'auto'`: the macOS Keychain first, then the file;
/// elsewhere the file. `'none'`: no credentials (only in-process signals and the cache).
#[napi(string_enum = "lowercase")]
#[derive(Clone, Copy)]
pub enum CredentialStore {
  Auto,
  File,
  Keychain,
  None,
}

impl CredentialStore {
  /// What a bad `options.credentials` is told it must be.
  pub const EXPECTED: &'static str = "'auto', 'file', 'keychain' or 'none'";

  pub fn parse(s: &str) -> Option<Self> {
    Some(match s {
      "auto" => CredentialStore::Auto,
      "file" => CredentialStore::File,
      "keychain" => CredentialStore::Keychain,
      "none" => CredentialStore::None,
      _ => return None,
    })
  }
}

impl From<CredentialStore> for CredentialSource {
  fn from(s: CredentialStore) -> Self {
    match s {
      CredentialStore::Auto => CredentialSource::Auto,
      CredentialStore::File => CredentialSource::File,
      CredentialStore::Keychain => CredentialSource::Keychain,
      CredentialStore::None => CredentialSource::None,
    }
  }
}

/// `'config'`: judged with the server's config by Claude Code 2.1.332's rules. `'name'`: no
/// config was given for this server, so the name-only rule judged it.
#[napi(string_enum = "lowercase")]
pub enum JudgedBy {
  Config,
  Name,
}

impl From<cache_file::JudgedBy> for JudgedBy {
  fn from(j: cache_file::JudgedBy) -> Self {
    match j {
      cache_file::JudgedBy::Config => JudgedBy::Config,
      cache_file::JudgedBy::Name => JudgedBy::Name,
    }
  }
}

/// Why Claude Code ignores an entry whatever its age. `'transport'`: the server's transport
/// never consults the cache (plain stdio, ws, sdk); `'id-mismatch'`: the entry's `id` is not the
/// server's; `'plugin-entry-has-id'`: a plugin http/sse server's entry with an `id`.
#[napi(string_enum = "kebab-case")]
pub enum IgnoredBecause {
  Transport,
  IdMismatch,
  PluginEntryHasId,
}

impl From<cache_file::Ignored> for IgnoredBecause {
  fn from(i: cache_file::Ignored) -> Self {
    match i {
      cache_file::Ignored::Transport => IgnoredBecause::Transport,
      cache_file::Ignored::IdMismatch => IgnoredBecause::IdMismatch,
      cache_file::Ignored::PluginEntryHasId => IgnoredBecause::PluginEntryHasId,
    }
  }
}

/// Why `purgeStale` removed an entry. `'expired'`: past its TTL (Claude Code ignores it
/// already). `'superseded'`: the server's credentials were saved after the entry was written
/// (see the README's rule).
#[napi(string_enum = "lowercase")]
pub enum PurgeReason {
  Expired,
  Superseded,
}

impl From<Staleness> for PurgeReason {
  fn from(s: Staleness) -> Self {
    match s {
      Staleness::Expired => PurgeReason::Expired,
      Staleness::Superseded => PurgeReason::Superseded,
    }
  }
}

/// `'needs-auth-cache'`: a needs-auth entry within its TTL (the first skip rule).
/// `'tokenless-stub'`: credentials without tokens after OAuth discovery (the second rule).
#[napi(string_enum = "kebab-case")]
pub enum SkipReasonKind {
  NeedsAuthCache,
  TokenlessStub,
}

/// `'notify'`: OS notifications, on a local filesystem. `'poll'`: read every `pollIntervalMs`,
/// on a filesystem whose changes may be made elsewhere (NFS, SMB, FUSE, 9p, …, or one not known).
#[napi(string_enum = "kebab-case")]
pub enum WatchModeKind {
  Notify,
  Poll,
}

impl From<mcp_needs_auth_core::watch_mode::Mode> for WatchModeKind {
  fn from(mode: mcp_needs_auth_core::watch_mode::Mode) -> Self {
    match mode {
      mcp_needs_auth_core::watch_mode::Mode::Notify => WatchModeKind::Notify,
      mcp_needs_auth_core::watch_mode::Mode::Poll => WatchModeKind::Poll,
    }
  }
}
