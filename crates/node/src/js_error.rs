//! The errors JavaScript sees: every one an `Error` with one of this package's stable codes.

use napi::bindgen_prelude::*;

use mcp_needs_auth_core::error::{Error as CoreError, ErrorCode};

/// The `code` of every error this addon throws: one of the core's stable codes, or a failure
/// napi reported, which is given a stable code here and only here (napi's status names, such
/// as `InvalidArg` or `GenericFailure`, are not part of this package's API).
pub enum Code {
  Core(ErrorCode),
  Napi(Status),
}

/// A failure inside the JavaScript engine binding that no argument explains.
pub const ERR_INTERNAL: &str = "ERR_INTERNAL";

impl AsRef<str> for Code {
  fn as_ref(&self) -> &str {
    match self {
      Code::Core(c) => c.as_str(),
      Code::Napi(
        Status::InvalidArg
        | Status::ObjectExpected
        | Status::StringExpected
        | Status::NameExpected
        | Status::FunctionExpected
        | Status::NumberExpected
        | Status::BooleanExpected
        | Status::ArrayExpected
        | Status::BigintExpected
        | Status::DateExpected
        | Status::ArrayBufferExpected
        | Status::DetachableArraybufferExpected,
      ) => ErrorCode::InvalidArgument.as_str(),
      Code::Napi(_) => ERR_INTERNAL,
    }
  }
}

impl From<Status> for Code {
  fn from(s: Status) -> Self {
    Code::Napi(s)
  }
}

/// Internal helpers' result. `#[napi]` functions spell it `Result<T, Code>`: napi-derive
/// recognises a return type by the name `Result`.
pub type JsResult<T> = napi::Result<T, Code>;

/// A core error as the `Error` JavaScript sees: its stable code and its message.
pub fn core_error(e: CoreError) -> napi::Error<Code> {
  napi::Error::new(Code::Core(e.code), e.message)
}

/// `.js()?` on napi's and the core's results inside functions that return `JsResult`: the one
/// place either error becomes the `Error` JavaScript sees.
pub trait NapiResultExt<T> {
  fn js(self) -> JsResult<T>;
}

impl<T> NapiResultExt<T> for napi::Result<T> {
  fn js(self) -> JsResult<T> {
    self.map_err(|e| napi::Error::new(Code::Napi(e.status), e.reason))
  }
}

impl<T> NapiResultExt<T> for mcp_needs_auth_core::error::Result<T> {
  fn js(self) -> JsResult<T> {
    self.map_err(core_error)
  }
}

pub fn invalid_argument(message: impl Into<String>) -> napi::Error<Code> {
  core_error(CoreError::new(ErrorCode::InvalidArgument, message))
}
