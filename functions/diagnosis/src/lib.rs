//! The heart of oidc-watch: from one CloudTrail `AssumeRoleWithWebIdentity` record and the
//! account's IAM state, say why the call failed, which condition failed, and the fix.
//!
//! Pure: no AWS SDK, no async runtime, no environment access. Adapters live elsewhere.
//!
//! ```text
//! bytes --record::read_input--> WebIdentityEvent --claims--> Claims
//!       --diagnose(+ AccountSnapshot)--> Diagnosis { cause, fix, failed_conditions, findings }
//! ```

pub mod alert;
pub mod audit;
pub mod backfill;
pub mod change;
pub mod claims;
pub mod diagnose;
pub mod evaluate;
pub mod keys;
pub mod metrics;
pub mod mismatch;
pub mod names;
pub mod owner;
pub mod pattern;
pub mod plan;
pub mod policy;
pub mod ports;
pub mod record;
pub mod snapshot;
pub mod spike;
pub mod subject;
pub mod suggest;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod text;
pub mod time;

pub use diagnose::{diagnose, diagnose_claims, diagnose_with, Cause, Confidence, Diagnosis, Ownership};
pub use mismatch::SubjectMismatch;
pub use record::{read_input, InputError, InputItem, WebIdentityEvent};
pub use snapshot::AccountSnapshot;
