//! The real, public CloudTrail records in `tests/data/real-events/` (unchanged; its README
//! says where each came from): every one parses and
//! yields the claims it holds, and diagnoses without a snapshot to the cause the event
//! alone supports.

use diagnosis::claims::{Claims, Outcome};
use diagnosis::subject::ProviderKind;
use diagnosis::testing::files_below;
use diagnosis::{diagnose, read_input, Cause, Confidence, InputItem, SubjectMismatch, WebIdentityEvent};
use oidc_watch_tests::real_events_dir;

/// What one record says. `None` means the record does not carry the field.
struct Expected {
    file: &'static str,
    outcome: Outcome,
    error_code: Option<&'static str>,
    error_message: Option<&'static str>,
    event_id: Option<&'static str>,
    event_time: Option<&'static str>,
    account: Option<&'static str>,
    region: Option<&'static str>,
    role_arn: Option<&'static str>,
    role_name: Option<&'static str>,
    provider_url: Option<&'static str>,
    provider_arn: Option<&'static str>,
    provider_kind: Option<ProviderKind>,
    subject: Option<&'static str>,
    audience: Option<&'static str>,
    session_name: Option<&'static str>,
    duration_seconds: Option<u64>,
    endpoint_type: Option<&'static str>,
    /// `(name, value)` pairs of the claims derived from the subject.
    derived: &'static [(&'static str, &'static str)],
    session_tags: &'static [(&'static str, &'static str)],
    source_identity: Option<&'static str>,
    source_ip: Option<&'static str>,
    /// Diagnosis without a snapshot: cause, subject-mismatch kind, confidence.
    cause: Cause,
    subject_mismatch: Option<SubjectMismatch>,
    confidence: Confidence,
}

const GITHUB: Option<ProviderKind> = Some(ProviderKind::GitHub);

const EXPECTED: &[Expected] = &[
    // Real GitHub Actions success through the regional endpoint.
    Expected {
        file: "cloudsnitch-gha-success-1.json",
        outcome: Outcome::Success,
        error_code: None,
        error_message: None,
        event_id: Some("ef0464cd-918e-4528-9ea3-1a081d39b393"),
        event_time: Some("2025-04-16T02:46:56Z"),
        account: Some("774305579662"),
        region: Some("us-east-1"),
        role_arn: Some(
            "arn:aws:iam::774305579662:role/cloud-snitch-github-actio-GithubActionsRoleF5CC769F-MoeCHSu77MYt",
        ),
        role_name: Some("cloud-snitch-github-actio-GithubActionsRoleF5CC769F-MoeCHSu77MYt"),
        provider_url: Some("token.actions.githubusercontent.com"),
        provider_arn: Some("arn:aws:iam::774305579662:oidc-provider/token.actions.githubusercontent.com"),
        provider_kind: GITHUB,
        subject: Some("repo:ccbrown/cloud-snitch:ref:refs/heads/main"),
        audience: Some("sts.amazonaws.com"),
        session_name: Some("GitHubActions"),
        duration_seconds: Some(3600),
        endpoint_type: Some("regional"),
        derived: &[
            ("format", "github"),
            ("repository", "ccbrown/cloud-snitch"),
            ("owner", "ccbrown"),
            ("ref", "refs/heads/main"),
            ("ref_type", "branch"),
        ],
        session_tags: &[],
        source_identity: None,
        source_ip: Some("52.154.133.36"),
        cause: Cause::None,
        subject_mismatch: None,
        confidence: Confidence::Certain,
    },
    // Real EKS IRSA AccessDenied: no responseElements, aud only in principalId.
    Expected {
        file: "greenpau-argo-workflows-aws-plugin-irsa-accessdenied-1.json",
        outcome: Outcome::Failure,
        error_code: Some("AccessDenied"),
        error_message: Some("An unknown error occurred"),
        event_id: Some("899f0a00-4e04-4fab-bb35-0297ed266f62"),
        event_time: Some("2023-11-08T15:09:08Z"),
        account: Some("100000000002"),
        region: Some("us-west-2"),
        role_arn: Some("arn:aws:iam::100000000002:role/sm-pipelines-k8s-awf-aws-executor-plugin"),
        role_name: Some("sm-pipelines-k8s-awf-aws-executor-plugin"),
        provider_url: Some("oidc.eks.us-west-2.amazonaws.com/id/A8242F25BFBB8F98F5321B2AE63C8B5C"),
        provider_arn: Some(
            "arn:aws:iam::100000000002:oidc-provider/oidc.eks.us-west-2.amazonaws.com/id/A8242F25BFBB8F98F5321B2AE63C8B5C",
        ),
        provider_kind: Some(ProviderKind::Eks),
        subject: Some("system:serviceaccount:argo:awf-aws-executor-plugin"),
        audience: Some("sts.amazonaws.com"),
        session_name: Some("1699456147945229070"),
        duration_seconds: None,
        endpoint_type: Some("regional"),
        derived: &[
            ("format", "eks-service-account"),
            ("namespace", "argo"),
            ("service_account", "awf-aws-executor-plugin"),
        ],
        session_tags: &[],
        source_identity: None,
        source_ip: Some("44.238.229.20"),
        cause: Cause::SubjectMismatch,
        subject_mismatch: Some(SubjectMismatch::Other),
        confidence: Confidence::Unknown,
    },
    // AWS's current documentation example: `<placeholders>` inside strings, session tags,
    // sourceIdentity, no RequestDetails (the endpoint comes from the TLS host header).
    Expected {
        file: "awsdocs-iam-cloudtrail-integration-oidc-success-2024.json",
        outcome: Outcome::Success,
        error_code: None,
        error_message: None,
        event_id: Some("aEXAMPLE-ee29-4ac0-a0ed-3f5c5EXAMPLE"),
        event_time: Some("2024-07-09T15:41:37Z"),
        account: Some("444455556666"),
        region: Some("us-east-2"),
        role_arn: Some("arn:aws:iam::444455556666:role/FederatedWebIdentityRole"),
        role_name: Some("FederatedWebIdentityRole"),
        provider_url: Some("<issuer url of OIDC provider>"),
        provider_arn: Some("arn:aws:iam::444455556666:oidc-provider/<issuer url of OIDC provider>"),
        provider_kind: Some(ProviderKind::Other),
        subject: Some("<id of user>"),
        audience: Some("<id of application>"),
        session_name: Some("<assigned role session name>"),
        duration_seconds: Some(3600),
        endpoint_type: Some("regional"),
        derived: &[("format", "opaque")],
        session_tags: &[("CostCenter", "24680"), ("Project", "Pegasus")],
        source_identity: Some("MyWebIdentityUser"),
        source_ip: Some("192.0.2.101"),
        cause: Cause::None,
        subject_mismatch: None,
        confidence: Confidence::Certain,
    },
    // AWS re:Post's trimmed IRSA failure: no provider, no principalId; sub from userName,
    // account from the role ARN (11 digits, as published).
    Expected {
        file: "repost-eks-troubleshoot-sdk-workload-accessdenied-partial.json",
        outcome: Outcome::Failure,
        error_code: Some("AccessDenied"),
        error_message: Some("An unknown error occurred"),
        event_id: None,
        event_time: None,
        account: Some("11112222333"),
        region: None,
        role_arn: Some("arn:aws:iam::11112222333:role/AccessEC2role"),
        role_name: Some("AccessEC2role"),
        provider_url: None,
        provider_arn: None,
        provider_kind: None,
        subject: Some("system:serviceaccount:serverless:aws-sdk"),
        audience: None,
        session_name: Some("botocore-session-1675698641"),
        duration_seconds: None,
        endpoint_type: None,
        derived: &[
            ("format", "eks-service-account"),
            ("namespace", "serverless"),
            ("service_account", "aws-sdk"),
        ],
        session_tags: &[],
        source_identity: None,
        source_ip: None,
        cause: Cause::SubjectMismatch,
        subject_mismatch: Some(SubjectMismatch::Other),
        confidence: Confidence::Unknown,
    },
    // Datadog Security Labs' trimmed GitHub Actions success: no eventTime, region, ids.
    Expected {
        file: "datadog-securitylabs-gha-success-partial.json",
        outcome: Outcome::Success,
        error_code: None,
        error_message: None,
        event_id: None,
        event_time: None,
        account: Some("012345678901"),
        region: None,
        role_arn: Some("arn:aws:iam::012345678901:role/github-actions-role"),
        role_name: Some("github-actions-role"),
        provider_url: Some("token.actions.githubusercontent.com"),
        provider_arn: Some("arn:aws:iam::012345678901:oidc-provider/token.actions.githubusercontent.com"),
        provider_kind: GITHUB,
        subject: Some("repo:SOURCE-ORG/SOURCE-REPO:ref:refs/heads/BRANCH"),
        audience: Some("sts.amazonaws.com"),
        session_name: Some("MySessionName"),
        duration_seconds: Some(3600),
        endpoint_type: None,
        derived: &[
            ("format", "github"),
            ("repository", "SOURCE-ORG/SOURCE-REPO"),
            ("owner", "SOURCE-ORG"),
            ("ref", "refs/heads/BRANCH"),
            ("ref_type", "branch"),
        ],
        session_tags: &[],
        source_identity: None,
        source_ip: None,
        cause: Cause::None,
        subject_mismatch: None,
        confidence: Confidence::Certain,
    },
];

/// Not valid JSON as AWS published it: a missing comma after `roleSessionName` and a
/// trailing comma after `transitiveTagKeys`.
const NOT_JSON: &str = "awsdocs-iam-user-guide-archive-web-identity-google-success.not-valid-json.txt";

fn read_event(file: &str) -> WebIdentityEvent {
    let path = real_events_dir().join(file);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let items = read_input(&bytes);
    match items.as_slice() {
        [Ok(InputItem::Event(event))] => (**event).clone(),
        other => panic!("{file}: expected one event, got {other:?}"),
    }
}

/// Compares one field; collects a line per difference instead of stopping at the first.
fn compare<T: PartialEq + std::fmt::Debug>(wrong: &mut Vec<String>, what: &str, got: T, want: T) {
    if got != want {
        wrong.push(format!("{what}: got {got:?}, expected {want:?}"));
    }
}

fn derived_value(claims: &Claims, name: &str) -> Option<String> {
    let value = serde_json::to_value(&claims.derived).unwrap();
    value.get(name).and_then(|v| v.as_str()).map(str::to_owned)
}

fn check(expected: &Expected) -> Vec<String> {
    let event = read_event(expected.file);
    let claims = Claims::from_event(&event);
    let mut wrong = Vec::new();
    let w = &mut wrong;
    compare(w, "outcome", claims.outcome, expected.outcome);
    compare(w, "error_code", claims.error_code.as_deref(), expected.error_code);
    compare(
        w,
        "error_message",
        claims.error_message.as_deref(),
        expected.error_message,
    );
    compare(w, "event_id", claims.event_id.as_deref(), expected.event_id);
    compare(w, "event_time", claims.event_time.as_deref(), expected.event_time);
    compare(w, "account", claims.account_id.as_deref(), expected.account);
    compare(w, "region", claims.region.as_deref(), expected.region);
    compare(w, "role_arn", claims.role_arn.as_deref(), expected.role_arn);
    compare(w, "role_name", claims.role_name.as_deref(), expected.role_name);
    let provider = claims.provider.as_ref();
    compare(
        w,
        "provider url",
        provider.map(|p| p.url.as_str()),
        expected.provider_url,
    );
    compare(
        w,
        "provider arn",
        provider.and_then(|p| p.arn.as_deref()),
        expected.provider_arn,
    );
    compare(
        w,
        "provider kind",
        provider.map(|p| p.kind),
        expected.provider_kind,
    );
    compare(w, "subject", claims.subject.as_deref(), expected.subject);
    compare(w, "audience", claims.audience.as_deref(), expected.audience);
    compare(
        w,
        "session_name",
        claims.session_name.as_deref(),
        expected.session_name,
    );
    compare(
        w,
        "duration_seconds",
        claims.duration_seconds,
        expected.duration_seconds,
    );
    compare(
        w,
        "endpoint_type",
        claims.endpoint_type.as_deref(),
        expected.endpoint_type,
    );
    compare(
        w,
        "source_identity",
        claims.source_identity.as_deref(),
        expected.source_identity,
    );
    compare(w, "source_ip", claims.source_ip.as_deref(), expected.source_ip);
    for (name, value) in expected.derived {
        compare(
            w,
            &format!("claims.{name}"),
            derived_value(&claims, name).as_deref(),
            Some(*value),
        );
    }
    let tags: Vec<(&str, &str)> = claims
        .session_tags
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    compare(w, "session_tags", tags.as_slice(), expected.session_tags);

    let diagnosis = diagnose(&event, None);
    compare(w, "cause", diagnosis.cause, expected.cause);
    compare(
        w,
        "subject_mismatch",
        diagnosis.subject_mismatch,
        expected.subject_mismatch,
    );
    compare(w, "confidence", diagnosis.confidence, expected.confidence);
    compare(w, "evidence", diagnosis.evidence, "event-only");
    // The diagnosis repeats the claims it was given.
    compare(
        w,
        "diagnosis.subject",
        diagnosis.subject.as_deref(),
        expected.subject,
    );
    compare(
        w,
        "diagnosis.audience",
        diagnosis.audience.as_deref(),
        expected.audience,
    );
    compare(
        w,
        "diagnosis.role_arn",
        diagnosis.role_arn.as_deref(),
        expected.role_arn,
    );
    compare(
        w,
        "diagnosis.provider",
        diagnosis.provider.as_deref(),
        expected.provider_url,
    );
    compare(
        w,
        "diagnosis.account_id",
        diagnosis.account_id.as_deref(),
        expected.account,
    );
    if diagnosis.explanation.trim().is_empty() {
        w.push("empty explanation".to_owned());
    }
    match expected.outcome {
        Outcome::Success => compare(w, "fix", diagnosis.fix.as_deref(), None),
        Outcome::Failure => {
            if !diagnosis.explanation.contains("Without the trust policy") {
                w.push(format!(
                    "event-only explanation does not say so: {}",
                    diagnosis.explanation
                ));
            }
            if diagnosis.fix.is_none() {
                w.push("a failure needs a fix".to_owned());
            }
        }
    }
    wrong
}

#[test]
fn every_real_record_yields_its_claims_and_event_only_cause() {
    let failures: Vec<String> = EXPECTED
        .iter()
        .flat_map(|expected| {
            check(expected)
                .into_iter()
                .map(move |w| format!("  {}: {w}", expected.file))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} differences:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_file_in_the_directory_is_checked() {
    let files: Vec<String> = files_below(&real_events_dir(), &[".json", ".txt"])
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files.len(), 6, "{files:?}");
    for file in &files {
        assert!(
            file == NOT_JSON || EXPECTED.iter().any(|e| e.file == file),
            "{file} has no expectations"
        );
    }
    assert!(
        real_events_dir().join("README.md").is_file(),
        "README.md says where each came from"
    );
}

/// The malformed AWS example is one clear error for its one record: not a panic, and not
/// one error per line after the missing comma.
#[test]
fn malformed_aws_example_is_one_clear_error() {
    let bytes = std::fs::read(real_events_dir().join(NOT_JSON)).unwrap();
    let items = read_input(&bytes);
    assert_eq!(items.len(), 1, "{items:?}");
    let error = items[0].as_ref().expect_err("not valid JSON");
    assert_eq!((error.record, error.line), (1, 1), "{error}");
    assert!(error.message.contains("not valid JSON"), "{error}");
    // serde_json names the place: line 20, the first line after the missing comma.
    assert!(error.message.contains("line 20"), "{error}");
    assert!(error.to_string().starts_with("record 1 (line 1): "), "{error}");
}

/// Every real record also reads the way Lambda receives it: inside an EventBridge
/// envelope, and as one line of a JSON-lines file.
#[test]
fn real_records_read_the_same_in_an_envelope_and_as_json_lines() {
    let mut lines = String::new();
    for expected in EXPECTED {
        let text = std::fs::read_to_string(real_events_dir().join(expected.file)).unwrap();
        let record: serde_json::Value = serde_json::from_str(&text).unwrap();
        lines.push_str(&record.to_string());
        lines.push('\n');
        let envelope = serde_json::json!({
            "version": "0", "id": "e-1", "detail-type": "AWS API Call via CloudTrail",
            "source": "aws.sts", "account": "999999999999", "region": "eu-west-1", "detail": record,
        });
        let items = read_input(envelope.to_string().as_bytes());
        let [Ok(InputItem::Event(event))] = items.as_slice() else {
            panic!("{}: {items:?}", expected.file)
        };
        let bare = read_event(expected.file);
        assert_eq!(event.record, bare.record, "{}", expected.file);
        assert_eq!(event.envelope_id.as_deref(), Some("e-1"));
        let claims = Claims::from_event(event);
        // The record's own fields win over the envelope's; the envelope fills the gaps.
        assert_eq!(
            claims.region.as_deref(),
            Some(expected.region.unwrap_or("eu-west-1")),
            "{}",
            expected.file
        );
    }
    let items = read_input(lines.as_bytes());
    assert_eq!(items.len(), EXPECTED.len());
    assert!(
        items.iter().all(|i| matches!(i, Ok(InputItem::Event(_)))),
        "{items:?}"
    );
}
