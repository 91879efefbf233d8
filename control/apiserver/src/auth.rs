//! The authentication and authorization stages of the request pipeline. Until skiff has users
//! and RBAC (a later issue), every request is the cluster admin and everything is allowed; the
//! traits are where real authenticators (client certificates, service account tokens) and the
//! RBAC authorizer plug in.

use axum::http::HeaderMap;

use crate::error::ApiError;
use crate::request::RequestInfo;

/// Who is making a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    /// User name.
    pub name: String,
    /// Groups.
    pub groups: Vec<String>,
}

/// Decides who sent a request.
pub trait Authenticator: Send + Sync {
    /// The user, or 401.
    fn authenticate(&self, headers: &HeaderMap) -> Result<UserInfo, ApiError>;
}

/// Decides whether a user may do what a request asks.
pub trait Authorizer: Send + Sync {
    /// `Ok` to allow, a 403 to deny.
    fn authorize(&self, user: &UserInfo, request: &RequestInfo) -> Result<(), ApiError>;
}

/// Every request is `system:admin` in `system:masters`.
pub struct AdminForEveryone;

impl Authenticator for AdminForEveryone {
    fn authenticate(&self, _headers: &HeaderMap) -> Result<UserInfo, ApiError> {
        Ok(UserInfo {
            name: "system:admin".into(),
            groups: vec!["system:masters".into(), "system:authenticated".into()],
        })
    }
}

/// Allows everything.
pub struct AlwaysAllow;

impl Authorizer for AlwaysAllow {
    fn authorize(&self, _user: &UserInfo, _request: &RequestInfo) -> Result<(), ApiError> {
        Ok(())
    }
}
