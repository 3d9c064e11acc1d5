//! A credential read once at init from Secrets Manager or from an SSM SecureString
//! parameter (oidc-notifier's Slack credential); never from a plain environment variable
//! or the template.

use aws_sdk_ssm::types::ParameterType;

/// The Secrets Manager operations this adapter calls.
pub const SECRETS_MANAGER_OPERATIONS: &[&str] = &["GetSecretValue"];
/// The SSM operations this adapter calls.
pub const SSM_OPERATIONS: &[&str] = &["GetParameter"];
/// GetParameter asks SSM to decrypt the SecureString: SSM then calls kms:Decrypt.
pub const GET_PARAMETER_WITH_DECRYPTION: bool = true;

/// Where the credential is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretLocation {
    SecretsManager(String),
    Parameter(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("Secrets Manager GetSecretValue {id}: {message}")]
    SecretsManager { id: String, message: String },
    #[error("SSM GetParameter {name}: {message}")]
    Parameter { name: String, message: String },
    #[error("the Slack credential is unusable: {0}")]
    Invalid(String),
}

/// The stored value at `location`.
pub async fn read(sdk: &aws_config::SdkConfig, location: &SecretLocation) -> Result<String, SecretError> {
    match location {
        SecretLocation::SecretsManager(id) => {
            from_secrets_manager(&aws_sdk_secretsmanager::Client::new(sdk), id).await
        }
        SecretLocation::Parameter(name) => from_parameter(&aws_sdk_ssm::Client::new(sdk), name).await,
    }
}

/// `SecretString` of `secret_id`.
pub async fn from_secrets_manager(
    client: &aws_sdk_secretsmanager::Client,
    secret_id: &str,
) -> Result<String, SecretError> {
    let error = |message: String| SecretError::SecretsManager {
        id: secret_id.to_owned(),
        message,
    };
    let output = client
        .get_secret_value()
        .secret_id(secret_id)
        .send()
        .await
        .map_err(|e| error(crate::describe(&e)))?;
    output
        .secret_string()
        .map(str::to_owned)
        .ok_or_else(|| error("the secret has no SecretString (binary secrets are not supported)".to_owned()))
}

/// The decrypted value of the SecureString parameter `name`; any other type is refused.
pub async fn from_parameter(client: &aws_sdk_ssm::Client, name: &str) -> Result<String, SecretError> {
    let error = |message: String| SecretError::Parameter {
        name: name.to_owned(),
        message,
    };
    let output = client
        .get_parameter()
        .name(name)
        .with_decryption(GET_PARAMETER_WITH_DECRYPTION)
        .send()
        .await
        .map_err(|e| error(crate::describe(&e)))?;
    let parameter = output
        .parameter()
        .ok_or_else(|| error("no parameter returned".to_owned()))?;
    if parameter.r#type() != Some(&ParameterType::SecureString) {
        return Err(error(format!(
            "is a {} parameter; store the Slack credential as a SecureString",
            parameter.r#type().map_or("typeless", ParameterType::as_str)
        )));
    }
    parameter
        .value()
        .map(str::to_owned)
        .ok_or_else(|| error("the parameter has no value".to_owned()))
}
