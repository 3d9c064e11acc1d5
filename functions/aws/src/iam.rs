//! Live IAM state for the diagnosis: `GetRole` and the account's OIDC providers, cached
//! per warm instance. Roles in another account are read through
//! `arn:aws:iam::<account>:role/<READ_ROLE_NAME>`, never with our own credentials.
//!
//! Role names and account IDs arrive in events a stranger can send, so every cache is
//! bounded by construction ([`ROLE_CACHE_CAPACITY`], [`ACCOUNT_CACHE_CAPACITY`]; expired
//! entries go first, then the oldest), answers that cannot exist (a malformed account ID
//! or role name) cost no call, `NoSuchEntity` is cached for the full TTL and any other
//! error for [`ERROR_TTL`], so a throttle does not become a stampede. Retries with
//! jittered exponential backoff are the SDK's own (standard mode, from the `SdkConfig`).
//!
//! IAM role names are unique without regard to case ("Deploy" and "deploy" cannot both
//! exist), so roles are cached under the lower-cased name and the [`Role`] carries the
//! spelling IAM answered with, never the event's. A `GetRole` that matches exactly (as
//! moto's does) misses a role asked for in another case; on `NoSuchEntity` for a name with
//! upper-case letters the lower-case spelling (the usual convention) is asked once more.
//! Spellings IAM did not know are remembered with the miss, so a later event that spells
//! the role exactly as it exists is still asked for.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_sdk_iam::config::http::HttpResponse;
use aws_sdk_iam::error::{ProvideErrorMetadata, SdkError};
use diagnosis::policy::PolicyDocument;
use diagnosis::ports::{AccountState, PortError};
use diagnosis::snapshot::{AccountSnapshot, OidcProvider, Role, DEFAULT_MAX_SESSION_DURATION};
use diagnosis::text::quote;

/// Roles kept per warm instance, over all accounts.
/// The IAM operations this adapter calls.
pub const IAM_OPERATIONS: &[&str] = &[
    "GetOpenIDConnectProvider",
    "GetRole",
    "ListOpenIDConnectProviders",
];
/// The STS operations this adapter calls (GetCallerIdentity needs no permission).
pub const STS_OPERATIONS: &[&str] = &["AssumeRole", "GetCallerIdentity"];

pub const ROLE_CACHE_CAPACITY: usize = 1024;
/// Accounts whose providers, and whose read-role clients, are kept per warm instance.
pub const ACCOUNT_CACHE_CAPACITY: usize = 256;
/// How long a failed lookup (other than `NoSuchEntity`) is answered from the cache.
pub const ERROR_TTL: Duration = Duration::from_secs(30);

/// Credentials from an assumed read role last an hour; refresh well before.
const CLIENT_TTL: Duration = Duration::from_secs(45 * 60);
/// `GetOpenIDConnectProvider` calls in flight at once for one account.
const PROVIDER_GETS_IN_FLIGHT: usize = 4;
/// Spellings of one missing role asked of IAM before further ones are answered from the
/// cache: bounds what a stranger spraying case variants costs.
const MAX_SPELLINGS: usize = 4;
/// IAM's limit on a role name.
const MAX_ROLE_NAME: usize = 64;

/// Error codes worth retrying whatever the HTTP status says (the query protocol answers
/// throttling with a 400).
const RETRYABLE_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "Throttled",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "ServiceFailure",
    "ServiceUnavailable",
    "InternalFailure",
    "InternalError",
    "RequestTimeout",
    "RequestTimeoutException",
    "IDPCommunicationError",
];

/// Worth retrying: throttling, a 5xx, a timeout or a transport failure. A client error
/// (AccessDenied, ValidationError, ...) is not.
pub(crate) fn is_retryable<E: ProvideErrorMetadata>(error: &SdkError<E, HttpResponse>) -> bool {
    match error {
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or("");
            let status = service.raw().status();
            RETRYABLE_CODES.contains(&code)
                || status.is_server_error()
                || status.as_u16() == 429
                || code.is_empty()
        }
        SdkError::ConstructionFailure(_) => false,
        // Timeouts, dispatch (transport) failures, unreadable responses.
        _ => true,
    }
}

fn sdk_error<E>(service: &'static str, context: &str, error: &SdkError<E, HttpResponse>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    PortError::new(
        service,
        format!("{context}: {}", crate::describe(error)),
        is_retryable(error),
    )
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Twelve ASCII digits. Anything else names no account and is not looked up.
fn is_account_id(account: &str) -> bool {
    account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())
}

/// What IAM accepts as a role name (`[\w+=,.@-]{1,64}`); no role has any other name.
fn is_role_name(name: &str) -> bool {
    (1..=MAX_ROLE_NAME).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@-".contains(&b))
}

struct Entry<V> {
    at: Instant,
    ttl: Duration,
    value: V,
}

impl<V> Entry<V> {
    fn fresh(&self) -> bool {
        self.at.elapsed() < self.ttl
    }
}

/// A map that never holds more than `capacity` entries: inserting a new key into a full
/// cache first drops the expired entries, then, if none had expired, the oldest.
struct BoundedCache<K, V> {
    capacity: usize,
    entries: HashMap<K, Entry<V>>,
}

impl<K: Eq + Hash + Clone, V: Clone> BoundedCache<K, V> {
    fn new(capacity: usize) -> Self {
        BoundedCache {
            capacity: capacity.max(1),
            entries: HashMap::new(),
        }
    }

    /// The value, if it has not outlived its TTL.
    fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.entries
            .get(key)
            .filter(|e| e.fresh())
            .map(|e| e.value.clone())
    }

    fn insert(&mut self, key: K, value: V, ttl: Duration) {
        if !self.entries.contains_key(&key) && self.entries.len() >= self.capacity {
            self.entries.retain(|_, e| e.fresh());
            if self.entries.len() >= self.capacity {
                let oldest = self
                    .entries
                    .iter()
                    .min_by_key(|(_, e)| e.at)
                    .map(|(k, _)| k.clone());
                if let Some(oldest) = oldest {
                    self.entries.remove(&oldest);
                }
            }
        }
        self.entries.insert(
            key,
            Entry {
                at: Instant::now(),
                ttl,
                value,
            },
        );
    }

    fn len(&self) -> usize {
        self.entries.len()
    }

    /// Drops the entry, fresh or not; its value if it was fresh.
    fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.entries.remove(key).filter(|e| e.fresh()).map(|e| e.value)
    }
}

/// What IAM said about one role (all spellings of its name).
#[derive(Clone)]
enum RoleAnswer {
    Found(Role),
    /// `NoSuchEntity` for each of these spellings.
    Absent(Vec<String>),
}

/// How many entries each cache holds (for tests and logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheSizes {
    pub roles: usize,
    pub providers: usize,
    pub clients: usize,
}

pub struct IamAccountState {
    sdk_config: aws_config::SdkConfig,
    own_client: aws_sdk_iam::Client,
    sts: aws_sdk_sts::Client,
    read_role_name: Option<String>,
    ttl: Duration,
    error_ttl: Duration,
    own_account: tokio::sync::OnceCell<String>,
    /// The last GetCallerIdentity failure, answered for `error_ttl`.
    own_account_error: Mutex<Option<Entry<PortError>>>,
    clients: Mutex<BoundedCache<String, Result<aws_sdk_iam::Client, PortError>>>,
    /// Keyed by (account, lower-cased role name).
    roles: Mutex<BoundedCache<(String, String), Result<RoleAnswer, PortError>>>,
    providers: Mutex<BoundedCache<String, Result<Vec<OidcProvider>, PortError>>>,
}

impl IamAccountState {
    pub fn new(sdk_config: &aws_config::SdkConfig, read_role_name: Option<String>, ttl: Duration) -> Self {
        Self::from_clients(
            sdk_config,
            aws_sdk_iam::Client::new(sdk_config),
            aws_sdk_sts::Client::new(sdk_config),
            read_role_name,
            ttl,
        )
    }

    /// As [`IamAccountState::new`], with the IAM client for our own account and the STS
    /// client given (tests pass mocked ones). `sdk_config` still configures the IAM
    /// clients built with an assumed read role's credentials.
    pub fn from_clients(
        sdk_config: &aws_config::SdkConfig,
        own_client: aws_sdk_iam::Client,
        sts: aws_sdk_sts::Client,
        read_role_name: Option<String>,
        ttl: Duration,
    ) -> Self {
        IamAccountState {
            sdk_config: sdk_config.clone(),
            own_client,
            sts,
            read_role_name,
            ttl,
            error_ttl: ERROR_TTL,
            own_account: tokio::sync::OnceCell::new(),
            own_account_error: Mutex::new(None),
            clients: Mutex::new(BoundedCache::new(ACCOUNT_CACHE_CAPACITY)),
            roles: Mutex::new(BoundedCache::new(ROLE_CACHE_CAPACITY)),
            providers: Mutex::new(BoundedCache::new(ACCOUNT_CACHE_CAPACITY)),
        }
    }

    /// How long errors are answered from the cache (default [`ERROR_TTL`]).
    pub fn with_error_ttl(mut self, error_ttl: Duration) -> Self {
        self.error_ttl = error_ttl;
        self
    }

    pub fn cache_sizes(&self) -> CacheSizes {
        CacheSizes {
            roles: lock(&self.roles).len(),
            providers: lock(&self.providers).len(),
            clients: lock(&self.clients).len(),
        }
    }

    fn cached_identity_error(&self) -> Option<PortError> {
        lock(&self.own_account_error)
            .as_ref()
            .filter(|e| e.fresh())
            .map(|e| e.value.clone())
    }

    /// Our own account, asked of STS once. A failure is answered for `error_ttl`, then
    /// asked again.
    async fn own_account(&self) -> Result<String, PortError> {
        if let Some(account) = self.own_account.get() {
            return Ok(account.clone());
        }
        if let Some(error) = self.cached_identity_error() {
            return Err(error);
        }
        self.own_account
            .get_or_try_init(|| async {
                // A concurrent lookup may have failed while this one waited.
                if let Some(error) = self.cached_identity_error() {
                    return Err(error);
                }
                let result = match self.sts.get_caller_identity().send().await {
                    Ok(identity) => identity.account.ok_or_else(|| {
                        PortError::new("sts", "GetCallerIdentity returned no account", true)
                    }),
                    Err(error) => Err(PortError::new(
                        "sts",
                        format!("GetCallerIdentity: {}", crate::describe(&error)),
                        true,
                    )),
                };
                if let Err(error) = &result {
                    tracing::warn!(error = %error, "our own account is unknown; other accounts are not read meanwhile");
                    *lock(&self.own_account_error) = Some(Entry {
                        at: Instant::now(),
                        ttl: self.error_ttl,
                        value: error.clone(),
                    });
                }
                result
            })
            .await
            .cloned()
    }

    /// The IAM client for `account`: our own, or one with the read role's credentials.
    /// With a read role configured and our own account unknown, no account is read: our
    /// own credentials must never read a member account.
    async fn client_for(&self, account: &str) -> Result<aws_sdk_iam::Client, PortError> {
        let Some(read_role) = &self.read_role_name else {
            return Ok(self.own_client.clone());
        };
        let own = self.own_account().await.map_err(|e| {
            PortError::new(
                "sts",
                format!(
                    "our own account is unknown, so account {account} is not read with our own credentials: {}",
                    e.message
                ),
                true,
            )
        })?;
        if own == account {
            return Ok(self.own_client.clone());
        }
        if let Some(cached) = lock(&self.clients).get(account) {
            return cached;
        }
        let result = self.assume_read_role(account, read_role).await;
        let ttl = if result.is_ok() {
            CLIENT_TTL
        } else {
            self.error_ttl
        };
        lock(&self.clients).insert(account.to_owned(), result.clone(), ttl);
        result
    }

    async fn assume_read_role(
        &self,
        account: &str,
        read_role: &str,
    ) -> Result<aws_sdk_iam::Client, PortError> {
        let role_arn = format!("arn:aws:iam::{account}:role/{read_role}");
        let assumed = self
            .sts
            .assume_role()
            .role_arn(&role_arn)
            .role_session_name("oidc-monitor")
            .send()
            .await
            .map_err(|e| sdk_error("sts", &format!("AssumeRole {role_arn}"), &e))?;
        let credentials = assumed.credentials.ok_or_else(|| {
            PortError::new(
                "sts",
                format!("AssumeRole {role_arn} returned no credentials"),
                false,
            )
        })?;
        let provider = aws_sdk_iam::config::Credentials::new(
            credentials.access_key_id,
            credentials.secret_access_key,
            Some(credentials.session_token),
            None,
            "oidc-monitor-read-role",
        );
        let config = aws_sdk_iam::config::Builder::from(&self.sdk_config)
            .credentials_provider(provider)
            .build();
        Ok(aws_sdk_iam::Client::from_conf(config))
    }

    /// `GetRole` for one spelling: the role, `None` on `NoSuchEntity`, or the error.
    async fn get_role(&self, client: &aws_sdk_iam::Client, name: &str) -> Result<Option<Role>, PortError> {
        match client.get_role().role_name(name).send().await {
            Ok(output) => Ok(output.role.map(|role| {
                let policy = match role.assume_role_policy_document.as_deref() {
                    Some(document) => PolicyDocument::parse_str(document),
                    None => Err(diagnosis::policy::PolicyError::NoStatement),
                };
                let max = role
                    .max_session_duration
                    .map_or(DEFAULT_MAX_SESSION_DURATION, |m| m.max(0) as u64);
                // IAM's spelling of the name, not the one asked for.
                Role::new(role.role_name, role.arn, max, policy)
            })),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_no_such_entity_exception()) =>
            {
                Ok(None)
            }
            Err(error) => Err(sdk_error("iam", &format!("GetRole {}", quote(name)), &error)),
        }
    }

    async fn role(
        &self,
        client: &aws_sdk_iam::Client,
        account: &str,
        name: &str,
    ) -> Result<Option<Role>, PortError> {
        if !is_role_name(name) {
            return Ok(None);
        }
        let lower = name.to_ascii_lowercase();
        let key = (account.to_owned(), lower.clone());
        let cached = lock(&self.roles).get(&key);
        let mut tried = match cached {
            Some(Ok(RoleAnswer::Found(role))) => return Ok(Some(role)),
            Some(Err(error)) => return Err(error),
            Some(Ok(RoleAnswer::Absent(tried))) => {
                if tried.len() >= MAX_SPELLINGS || tried.iter().any(|t| t == name) {
                    return Ok(None);
                }
                tried
            }
            None => Vec::new(),
        };
        let mut spellings = vec![name];
        if lower != name && !tried.contains(&lower) {
            spellings.push(&lower);
        }
        for spelling in spellings {
            match self.get_role(client, spelling).await {
                Ok(Some(role)) => {
                    lock(&self.roles).insert(key, Ok(RoleAnswer::Found(role.clone())), self.ttl);
                    return Ok(Some(role));
                }
                Ok(None) => tried.push(spelling.to_owned()),
                Err(error) => {
                    lock(&self.roles).insert(key, Err(error.clone()), self.error_ttl);
                    return Err(error);
                }
            }
        }
        lock(&self.roles).insert(key, Ok(RoleAnswer::Absent(tried)), self.ttl);
        Ok(None)
    }

    async fn providers(
        &self,
        client: &aws_sdk_iam::Client,
        account: &str,
        expected: Option<&str>,
    ) -> Result<Vec<OidcProvider>, PortError> {
        if let Some(cached) = lock(&self.providers).get(account) {
            return cached;
        }
        let expected = expected.filter(|arn| is_provider_arn_in(arn, account));
        let result = fetch_providers_expecting(client, expected).await;
        let ttl = if result.is_ok() { self.ttl } else { self.error_ttl };
        lock(&self.providers).insert(account.to_owned(), result.clone(), ttl);
        result
    }
}

/// `arn:<partition>:iam::<account>:oidc-provider/<url>`, of a length and alphabet IAM
/// could have made: a stranger's event names the provider.
fn is_provider_arn_in(arn: &str, account: &str) -> bool {
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(partition), Some("iam"), Some(""), Some(owner), Some(resource)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return false;
    };
    arn.len() <= 2048
        && partition.starts_with("aws")
        && owner == account
        && resource.len() > "oidc-provider/".len()
        && resource.starts_with("oidc-provider/")
        && resource.bytes().all(|b| b.is_ascii_graphic())
}

/// The account's OIDC providers: the list, then each provider, a few at a time.
pub async fn fetch_providers(client: &aws_sdk_iam::Client) -> Result<Vec<OidcProvider>, PortError> {
    fetch_providers_expecting(client, None).await
}

/// As [`fetch_providers`]; the `expected` provider is asked for alongside the list, and
/// kept only if the list names it.
async fn fetch_providers_expecting(
    client: &aws_sdk_iam::Client,
    expected: Option<&str>,
) -> Result<Vec<OidcProvider>, PortError> {
    let list = client.list_open_id_connect_providers().send();
    let early = async {
        match expected {
            Some(arn) => Some(get_provider(client, arn.to_owned()).await),
            None => None,
        }
    };
    let (list, early) = tokio::join!(list, early);
    let list = list.map_err(|e| sdk_error("iam", "ListOpenIDConnectProviders", &e))?;
    let arns: Vec<String> = list
        .open_id_connect_provider_list
        .unwrap_or_default()
        .into_iter()
        .filter_map(|entry| entry.arn)
        .collect();
    let mut found: Vec<Option<OidcProvider>> = vec![None; arns.len()];
    let mut fetched = None;
    if let (Some(arn), Some(Ok(provider))) = (expected, early) {
        if let Some(index) = arns.iter().position(|a| a == arn) {
            found[index] = provider;
            fetched = Some(index);
        }
    }
    let mut remaining = (0..arns.len()).filter(|i| Some(*i) != fetched);
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        while tasks.len() < PROVIDER_GETS_IN_FLIGHT {
            let Some(index) = remaining.next() else { break };
            let client = client.clone();
            let arn = arns[index].clone();
            tasks.spawn(async move { (index, get_provider(&client, arn).await) });
        }
        match tasks.join_next().await {
            Some(Ok((index, Ok(provider)))) => found[index] = provider,
            // Dropping the set aborts the calls still in flight.
            Some(Ok((_, Err(error)))) => return Err(error),
            Some(Err(join)) => {
                return Err(PortError::new(
                    "iam",
                    format!("GetOpenIDConnectProvider did not finish: {join}"),
                    true,
                ))
            }
            None => break,
        }
    }
    Ok(found.into_iter().flatten().collect())
}

/// One provider; `None` if it was deleted since it was listed.
async fn get_provider(client: &aws_sdk_iam::Client, arn: String) -> Result<Option<OidcProvider>, PortError> {
    let provider = match client
        .get_open_id_connect_provider()
        .open_id_connect_provider_arn(&arn)
        .send()
        .await
    {
        Ok(provider) => provider,
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_no_such_entity_exception()) =>
        {
            return Ok(None)
        }
        Err(error) => {
            return Err(sdk_error(
                "iam",
                &format!("GetOpenIDConnectProvider {arn}"),
                &error,
            ))
        }
    };
    let url = provider.url.unwrap_or_default();
    Ok(Some(OidcProvider {
        url: url.trim_start_matches("https://").to_owned(),
        arn: Some(arn),
        client_ids: provider.client_id_list.unwrap_or_default(),
        thumbprint_list: provider.thumbprint_list.unwrap_or_default(),
    }))
}

impl AccountState for IamAccountState {
    async fn snapshot(&self, account_id: &str, role_name: &str) -> Result<AccountSnapshot, PortError> {
        self.snapshot_expecting(account_id, role_name, None).await
    }

    async fn snapshot_expecting(
        &self,
        account_id: &str,
        role_name: &str,
        provider_arn: Option<&str>,
    ) -> Result<AccountSnapshot, PortError> {
        if !is_account_id(account_id) {
            return Err(PortError::new(
                "iam",
                format!("{} is not an AWS account ID", quote(account_id)),
                false,
            ));
        }
        let client = self.client_for(account_id).await?;
        // Both finish (and are cached) even when the other fails.
        let (role, providers) = tokio::join!(
            self.role(&client, account_id, role_name),
            self.providers(&client, account_id, provider_arn)
        );
        Ok(AccountSnapshot::from_iam(
            account_id, role_name, role?, providers?,
        ))
    }

    /// IAM changed the role: the next lookup asks IAM again.
    fn forget_role(&self, account_id: &str, role_name: &str) -> Option<Role> {
        let key = (account_id.to_owned(), role_name.to_ascii_lowercase());
        match lock(&self.roles).remove(&key) {
            Some(Ok(RoleAnswer::Found(role))) => Some(role),
            _ => None,
        }
    }

    /// The providers are cached per account, as one list.
    fn forget_provider(&self, account_id: &str, _provider_url: &str) {
        lock(&self.providers).remove(account_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_never_grows_past_its_capacity() {
        let mut cache = BoundedCache::new(3);
        for i in 0..10 {
            cache.insert(i, i, Duration::from_secs(60));
            assert!(cache.len() <= 3);
        }
        // The oldest went first.
        assert_eq!(
            (cache.get(&9), cache.get(&7), cache.get(&6)),
            (Some(9), Some(7), None)
        );
        // Expired entries go before fresh ones.
        let mut cache = BoundedCache::new(2);
        cache.insert("old", 1, Duration::from_secs(60));
        cache.insert("expired", 2, Duration::ZERO);
        cache.insert("new", 3, Duration::from_secs(60));
        assert_eq!((cache.get("old"), cache.get("new")), (Some(1), Some(3)));
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn a_removed_entry_is_gone_and_only_a_fresh_one_is_returned() {
        let mut cache = BoundedCache::new(3);
        cache.insert("a", 1, Duration::from_secs(60));
        cache.insert("b", 2, Duration::ZERO);
        assert_eq!((cache.remove("a"), cache.get("a")), (Some(1), None));
        assert_eq!((cache.remove("b"), cache.len()), (None, 0));
    }

    #[test]
    fn only_well_formed_names_are_looked_up() {
        assert!(is_account_id("111122223333"));
        assert!(!is_account_id("11112222333") && !is_account_id("11112222333x"));
        assert!(is_role_name("gha-deploy_main+=,.@"));
        assert!(!is_role_name("") && !is_role_name("a/b") && !is_role_name(&"a".repeat(65)));
        assert!(!is_role_name("déploiement"));
    }
}
