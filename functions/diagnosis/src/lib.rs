//! The heart of oidc-watch: from one CloudTrail `AssumeRoleWithWebIdentity` record and the
//! account's IAM state, say why the call failed, which condition failed, and the fix.
//!
//! Pure: no AWS SDK, no async runtime, no environment access. Adapters live elsewhere.

pub mod evaluate;
pub mod pattern;
pub mod policy;
