//! Live IAM state for the diagnosis: `GetRole` and the account's OIDC providers, cached
//! per warm instance with a TTL (`NoSuchEntity` too). Roles in another account are read
//! through `arn:aws:iam::<account>:role/<READ_ROLE_NAME>`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_sdk_iam::error::ProvideErrorMetadata;
use diagnosis::policy::PolicyDocument;
use diagnosis::ports::{AccountState, PortError};
use diagnosis::snapshot::{AccountSnapshot, OidcProvider, Role, DEFAULT_MAX_SESSION_DURATION};

/// A role as IAM answered: present, or known not to exist.
type RoleAnswer = Option<Role>;

struct Cached<T> {
    at: Instant,
    value: T,
}

pub struct IamAccountState {
    sdk_config: aws_config::SdkConfig,
    own_client: aws_sdk_iam::Client,
    sts: aws_sdk_sts::Client,
    read_role_name: Option<String>,
    ttl: Duration,
    own_account: tokio::sync::OnceCell<String>,
    clients: Mutex<HashMap<String, Cached<aws_sdk_iam::Client>>>,
    roles: Mutex<HashMap<(String, String), Cached<RoleAnswer>>>,
    providers: Mutex<HashMap<String, Cached<Vec<OidcProvider>>>>,
}

/// Credentials from an assumed read role last an hour; refresh well before.
const CLIENT_TTL: Duration = Duration::from_secs(45 * 60);

fn iam_error(context: &str, error: &(impl ProvideErrorMetadata + std::error::Error)) -> PortError {
    let code = error.code().unwrap_or("");
    let retryable = matches!(
        code,
        "Throttling" | "ThrottlingException" | "ServiceFailure" | "RequestLimitExceeded"
    ) || code.is_empty();
    PortError::new("iam", format!("{context}: {}", crate::describe(error)), retryable)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
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
            own_account: tokio::sync::OnceCell::new(),
            clients: Mutex::new(HashMap::new()),
            roles: Mutex::new(HashMap::new()),
            providers: Mutex::new(HashMap::new()),
        }
    }

    fn fresh<T: Clone>(&self, cached: Option<&Cached<T>>) -> Option<T> {
        cached
            .filter(|c| c.at.elapsed() < self.ttl)
            .map(|c| c.value.clone())
    }

    /// Our own account, asked of STS once. A failure is not remembered: the next lookup
    /// asks again, and meanwhile every account is read with our own credentials.
    async fn own_account(&self) -> Option<String> {
        let result = self
            .own_account
            .get_or_try_init(|| async {
                match self.sts.get_caller_identity().send().await {
                    Ok(identity) => identity.account.ok_or(()),
                    Err(error) => {
                        tracing::warn!(error = %error, "GetCallerIdentity failed; reading with our own credentials");
                        Err(())
                    }
                }
            })
            .await;
        result.ok().cloned()
    }

    /// The IAM client for `account`: our own, or one with the read role's credentials.
    async fn client_for(&self, account: &str) -> Result<aws_sdk_iam::Client, PortError> {
        let Some(read_role) = &self.read_role_name else {
            return Ok(self.own_client.clone());
        };
        match self.own_account().await {
            Some(own) if own != account => {}
            _ => return Ok(self.own_client.clone()),
        }
        if let Some(client) = lock(&self.clients)
            .get(account)
            .filter(|c| c.at.elapsed() < CLIENT_TTL)
        {
            return Ok(client.value.clone());
        }
        let role_arn = format!("arn:aws:iam::{account}:role/{read_role}");
        let assumed = self
            .sts
            .assume_role()
            .role_arn(&role_arn)
            .role_session_name("oidc-monitor")
            .send()
            .await
            .map_err(|e| {
                PortError::new(
                    "sts",
                    format!("AssumeRole {role_arn}: {}", crate::describe(&e)),
                    false,
                )
            })?;
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
        let client = aws_sdk_iam::Client::from_conf(config);
        lock(&self.clients).insert(
            account.to_owned(),
            Cached {
                at: Instant::now(),
                value: client.clone(),
            },
        );
        Ok(client)
    }

    async fn role(
        &self,
        client: &aws_sdk_iam::Client,
        account: &str,
        name: &str,
    ) -> Result<RoleAnswer, PortError> {
        let key = (account.to_owned(), name.to_ascii_lowercase());
        if let Some(answer) = self.fresh(lock(&self.roles).get(&key)) {
            return Ok(answer);
        }
        let answer = match client.get_role().role_name(name).send().await {
            Ok(output) => output.role.map(|role| {
                let policy = match role.assume_role_policy_document.as_deref() {
                    Some(document) => PolicyDocument::parse_str(document),
                    None => Err(diagnosis::policy::PolicyError::NoStatement),
                };
                let max = role
                    .max_session_duration
                    .map_or(DEFAULT_MAX_SESSION_DURATION, |m| m.max(0) as u64);
                Role::new(role.role_name, role.arn, max, policy)
            }),
            Err(error) => {
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_no_such_entity_exception())
                {
                    None
                } else {
                    return Err(iam_error(&format!("GetRole {name}"), &error));
                }
            }
        };
        lock(&self.roles).insert(
            key,
            Cached {
                at: Instant::now(),
                value: answer.clone(),
            },
        );
        Ok(answer)
    }

    async fn providers(
        &self,
        client: &aws_sdk_iam::Client,
        account: &str,
    ) -> Result<Vec<OidcProvider>, PortError> {
        if let Some(providers) = self.fresh(lock(&self.providers).get(account)) {
            return Ok(providers);
        }
        let list = client
            .list_open_id_connect_providers()
            .send()
            .await
            .map_err(|e| iam_error("ListOpenIDConnectProviders", &e))?;
        let mut providers = Vec::new();
        for entry in list.open_id_connect_provider_list.unwrap_or_default() {
            let Some(arn) = entry.arn else { continue };
            let provider = client
                .get_open_id_connect_provider()
                .open_id_connect_provider_arn(&arn)
                .send()
                .await
                .map_err(|e| iam_error(&format!("GetOpenIDConnectProvider {arn}"), &e))?;
            let url = provider.url.unwrap_or_default();
            providers.push(OidcProvider {
                url: url.trim_start_matches("https://").to_owned(),
                arn: Some(arn),
                client_ids: provider.client_id_list.unwrap_or_default(),
                thumbprint_list: provider.thumbprint_list.unwrap_or_default(),
            });
        }
        lock(&self.providers).insert(
            account.to_owned(),
            Cached {
                at: Instant::now(),
                value: providers.clone(),
            },
        );
        Ok(providers)
    }
}

impl AccountState for IamAccountState {
    async fn snapshot(&self, account_id: &str, role_name: &str) -> Result<AccountSnapshot, PortError> {
        let client = self.client_for(account_id).await?;
        let role = self.role(&client, account_id, role_name).await?;
        let providers = self.providers(&client, account_id).await?;
        Ok(AccountSnapshot {
            account_id: account_id.to_owned(),
            roles: role.into_iter().collect(),
            providers,
        })
    }
}
