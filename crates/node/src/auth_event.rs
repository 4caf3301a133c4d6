//! What a subscription carries from the core's threads to JavaScript: the event as
//! `onAuthChanged` callbacks receive it, and the threadsafe function (one per environment, see
//! `env_state::Hub`) that carries it, with the core's `Listener` that feeds it.

use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;

use crate::enums::{AuthChangeReason, AuthChangeSource};
use crate::path_string;
use mcp_needs_auth_core::event_bus::Listener;
use mcp_needs_auth_core::events::AuthEvent;

/// What an `onAuthChanged` callback receives.
#[napi(object)]
pub struct AuthChangedEvent {
  pub reason: AuthChangeReason,
  /// The servers concerned; empty means all servers.
  pub servers: Vec<String>,
  pub source: AuthChangeSource,
  /// When the change was seen (ms since the epoch).
  pub at: f64,
  /// The config dir the event is about.
  pub config_dir: String,
}

impl From<AuthEvent> for AuthChangedEvent {
  fn from(e: AuthEvent) -> Self {
    AuthChangedEvent {
      reason: e.reason.into(),
      servers: e.servers,
      source: e.source.into(),
      at: e.at,
      config_dir: path_string(&e.config_dir),
    }
  }
}

/// What the threadsafe function carries to the JS thread, for one subscriber.
pub(crate) enum Message {
  Event(AuthEvent),
  Warning(String),
}

/// The dispatcher's arguments: the subscriber id, then the event or the warning's text.
pub(crate) type DispatchArgs = FnArgs<(f64, Either<AuthChangedEvent, String>)>;

pub(crate) type Tsfn = ThreadsafeFunction<(u64, Message), (), DispatchArgs, Status, false, true>;

/// One subscriber, as the core's event bus delivers to it: through its environment's function.
pub(crate) struct JsListener {
  pub id: u64,
  pub tsfn: Arc<Tsfn>,
}

impl Listener for JsListener {
  fn deliver(&self, event: &AuthEvent) -> bool {
    self.tsfn.call((self.id, Message::Event(event.clone())), ThreadsafeFunctionCallMode::NonBlocking) != Status::Closing
  }

  fn warn(&self, message: &str) {
    self.tsfn.call((self.id, Message::Warning(message.to_owned())), ThreadsafeFunctionCallMode::NonBlocking);
  }
}
