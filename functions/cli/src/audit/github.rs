//! The GitHub lookups of `oidc-watch audit`: owners (`GET /users/{login}`), repositories
//! (`GET /repos/{owner}/{repo}`, redirects followed: a renamed or transferred repository
//! answers with its new `full_name`) and owner patterns (`GET /search/users`, first page).
//!
//! A few requests at a time, each with a timeout; the first answer that says the rate
//! limit is spent (403 or 429 with `X-RateLimit-Remaining: 0`, or any 429) stops the rest,
//! and the facts say what was skipped. Without a token, a repository that answers 404 may
//! be private: it is noted, never reported as gone.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use diagnosis::audit::account::{OwnerFact, RepositoryFact};
use diagnosis::audit::{GithubFacts, GithubLookups};
use diagnosis::pattern::like;
use serde::Deserialize;

/// Requests in flight at once.
const IN_FLIGHT: usize = 4;
/// Each request, connection to body.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Lookups made per run, of each kind; the rest are skipped (and said so).
const MAX_OWNERS: usize = 300;
const MAX_REPOSITORIES: usize = 1000;
const MAX_PATTERNS: usize = 20;
/// Logins read from one search.
const SEARCH_PAGE: usize = 100;
/// Largest response body read.
const MAX_BODY: usize = 1 << 20;
/// GitHub sends immutable subjects for repositories created from this day on (epoch
/// seconds of 2026-07-15T00:00:00Z).
const IMMUTABLE_SUBJECTS_FROM: i64 = 1_784_073_600;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Lookup {
    Owner(String),
    Repository(String),
    Pattern(String),
}

#[derive(Debug)]
enum Answer {
    Owner(String, OwnerFact),
    Repository(String, RepositoryFact),
    /// 404 without a token: not found, or private.
    Hidden(String),
    Pattern(String, Vec<String>),
    RateLimited(Lookup),
    /// Not asked: the rate limit was spent earlier.
    NotAsked(Lookup),
    Failed(Lookup, String),
}

#[derive(Deserialize)]
struct User {
    id: u64,
    #[serde(default, rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct Repository {
    id: u64,
    full_name: String,
    owner: User,
    #[serde(default)]
    created_at: Option<String>,
}

#[derive(Deserialize)]
struct Search {
    #[serde(default)]
    items: Vec<SearchUser>,
}

#[derive(Deserialize)]
struct SearchUser {
    login: String,
}

/// What GitHub says about `lookups`. `immutable` names the repositories (`owner/repo`,
/// lower case) that recorded successes show sending immutable subjects.
pub fn facts(
    api: &str,
    token: Option<&str>,
    lookups: &GithubLookups,
    immutable: &BTreeSet<String>,
) -> GithubFacts {
    let mut facts = GithubFacts::default();
    let mut work: Vec<Lookup> = Vec::new();
    let over = |kind: &str, total: usize, max: usize, facts: &mut GithubFacts| {
        if total > max {
            facts.skipped.push(format!(
                "{} of {total} {kind} were not looked up (at most {max} per run).",
                total - max
            ));
        }
    };
    over("owners", lookups.owners.len(), MAX_OWNERS, &mut facts);
    over(
        "repositories",
        lookups.repositories.len(),
        MAX_REPOSITORIES,
        &mut facts,
    );
    over(
        "owner patterns",
        lookups.owner_patterns.len(),
        MAX_PATTERNS,
        &mut facts,
    );
    work.extend(lookups.owners.iter().take(MAX_OWNERS).cloned().map(Lookup::Owner));
    work.extend(
        lookups
            .repositories
            .iter()
            .take(MAX_REPOSITORIES)
            .cloned()
            .map(Lookup::Repository),
    );
    work.extend(
        lookups
            .owner_patterns
            .iter()
            .take(MAX_PATTERNS)
            .cloned()
            .map(Lookup::Pattern),
    );
    if work.is_empty() {
        return facts;
    }
    let answers = match run(api, token, work) {
        Ok(answers) => answers,
        Err(error) => {
            facts.skipped.push(format!("GitHub was not asked: {error}."));
            return facts;
        }
    };
    let (mut hidden, mut limited, mut failed) = (Vec::new(), Vec::new(), Vec::new());
    for answer in answers {
        match answer {
            Answer::Owner(login, fact) => {
                facts.owners.insert(login, fact);
            }
            Answer::Repository(name, fact) => {
                let fact = match fact {
                    RepositoryFact::Exists {
                        full_name,
                        id,
                        owner_id,
                        immutable_subjects,
                    } => RepositoryFact::Exists {
                        immutable_subjects: immutable_subjects
                            || immutable.contains(&name)
                            || immutable.contains(&full_name.to_ascii_lowercase()),
                        full_name,
                        id,
                        owner_id,
                    },
                    other => other,
                };
                facts.repositories.insert(name, fact);
            }
            Answer::Hidden(name) => hidden.push(diagnosis::text::quote(&name)),
            Answer::Pattern(pattern, logins) => {
                facts.pattern_matches.insert(pattern, logins);
            }
            Answer::RateLimited(lookup) | Answer::NotAsked(lookup) => limited.push(describe(&lookup)),
            Answer::Failed(lookup, why) => failed.push(format!("{}: {why}", describe(&lookup))),
        }
    }
    if token.is_none() {
        facts.skipped.insert(
            0,
            "No GITHUB_TOKEN: public lookups only, at GitHub's unauthenticated rate limit.".to_owned(),
        );
    }
    if !hidden.is_empty() {
        facts.skipped.push(format!(
            "{} repositories answered 404 without a token, so they are gone or private and are not judged ({}); set GITHUB_TOKEN to tell them apart.",
            hidden.len(),
            first_few(&hidden)
        ));
    }
    if !limited.is_empty() {
        facts.skipped.push(format!(
            "GitHub's rate limit was spent: {} lookups were skipped ({}); set GITHUB_TOKEN or run again later.",
            limited.len(),
            first_few(&limited)
        ));
    }
    for failure in failed.iter().take(5) {
        facts.skipped.push(format!("GitHub lookup failed: {failure}."));
    }
    if failed.len() > 5 {
        facts
            .skipped
            .push(format!("{} more GitHub lookups failed.", failed.len() - 5));
    }
    facts
}

fn first_few(names: &[String]) -> String {
    let mut text = names.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
    if names.len() > 5 {
        text.push_str(&format!(" and {} more", names.len() - 5));
    }
    text
}

fn describe(lookup: &Lookup) -> String {
    match lookup {
        Lookup::Owner(login) => format!("owner {}", diagnosis::text::quote(login)),
        Lookup::Repository(name) => format!("repository {}", diagnosis::text::quote(name)),
        Lookup::Pattern(pattern) => format!("owner pattern {}", diagnosis::text::quote(pattern)),
    }
}

fn run(api: &str, token: Option<&str>, work: Vec<Lookup>) -> Result<Vec<Answer>, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let client = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::limited(5))
        .user_agent(concat!("oidc-watch/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| e.to_string())?;
    let api: Arc<str> = Arc::from(api.trim_end_matches('/'));
    let token: Option<Arc<str>> = token.map(Arc::from);
    let spent = Arc::new(AtomicBool::new(false));
    Ok(runtime.block_on(async move {
        let mut answers = Vec::with_capacity(work.len());
        let mut pending = work.into_iter();
        let mut tasks = tokio::task::JoinSet::new();
        loop {
            while tasks.len() < IN_FLIGHT {
                let Some(lookup) = pending.next() else { break };
                let (client, api, token, spent) = (client.clone(), api.clone(), token.clone(), spent.clone());
                tasks.spawn(async move { ask(&client, &api, token.as_deref(), &spent, lookup).await });
            }
            match tasks.join_next().await {
                Some(Ok(answer)) => answers.push(answer),
                Some(Err(_)) => {}
                None => break,
            }
        }
        answers
    }))
}

async fn ask(
    client: &reqwest::Client,
    api: &str,
    token: Option<&str>,
    spent: &AtomicBool,
    lookup: Lookup,
) -> Answer {
    if spent.load(Ordering::Relaxed) {
        return Answer::NotAsked(lookup);
    }
    let url = match &lookup {
        Lookup::Owner(login) => format!("{api}/users/{login}"),
        Lookup::Repository(name) => format!("{api}/repos/{name}"),
        Lookup::Pattern(pattern) => {
            let prefix = pattern.split(['*', '?']).next().unwrap_or("");
            format!("{api}/search/users?q={prefix}+in:login&per_page={SEARCH_PAGE}")
        }
    };
    let mut request = client
        .get(&url)
        .header("Accept", "application/vnd.github+json")
        .header("X-GitHub-Api-Version", "2022-11-28");
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = match request.send().await {
        Ok(response) => response,
        Err(error) => return Answer::Failed(lookup, without_url(error)),
    };
    let status = response.status().as_u16();
    let remaining = response
        .headers()
        .get("x-ratelimit-remaining")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .map(str::to_owned);
    if status == 429 || (status == 403 && remaining.as_deref() == Some("0")) {
        spent.store(true, Ordering::Relaxed);
        return Answer::RateLimited(lookup);
    }
    let body = match read_body(response).await {
        Ok(body) => body,
        Err(error) => return Answer::Failed(lookup, error),
    };
    match (lookup, status) {
        (Lookup::Owner(login), 404) => Answer::Owner(login, OwnerFact::NotFound),
        (Lookup::Repository(name), 404) if token.is_some() => {
            Answer::Repository(name, RepositoryFact::NotFound)
        }
        (Lookup::Repository(name), 404) => Answer::Hidden(name),
        (lookup, 200) => parse(lookup, &body),
        (lookup, status) => Answer::Failed(lookup, format!("HTTP {status}")),
    }
}

fn parse(lookup: Lookup, body: &[u8]) -> Answer {
    match lookup {
        Lookup::Owner(login) => match serde_json::from_slice::<User>(body) {
            Ok(user) => Answer::Owner(
                login,
                OwnerFact::Exists {
                    id: user.id,
                    organization: user.kind == "Organization",
                },
            ),
            Err(error) => Answer::Failed(Lookup::Owner(login), format!("unreadable answer: {error}")),
        },
        Lookup::Repository(name) => match serde_json::from_slice::<Repository>(body) {
            Ok(repository) => {
                let created = repository
                    .created_at
                    .as_deref()
                    .and_then(diagnosis::evaluate::epoch_seconds);
                Answer::Repository(
                    name,
                    RepositoryFact::Exists {
                        full_name: repository.full_name,
                        id: repository.id,
                        owner_id: repository.owner.id,
                        immutable_subjects: created.is_some_and(|c| c >= IMMUTABLE_SUBJECTS_FROM),
                    },
                )
            }
            Err(error) => Answer::Failed(Lookup::Repository(name), format!("unreadable answer: {error}")),
        },
        Lookup::Pattern(pattern) => match serde_json::from_slice::<Search>(body) {
            Ok(search) => {
                let logins = search
                    .items
                    .into_iter()
                    .take(SEARCH_PAGE)
                    .map(|u| u.login)
                    .filter(|login| like(&pattern.to_ascii_lowercase(), &login.to_ascii_lowercase()))
                    .collect();
                Answer::Pattern(pattern, logins)
            }
            Err(error) => Answer::Failed(Lookup::Pattern(pattern), format!("unreadable answer: {error}")),
        },
    }
}

async fn read_body(mut response: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(without_url)? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(format!("answer larger than {MAX_BODY} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The error without the URL (which names the lookup already).
fn without_url(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
