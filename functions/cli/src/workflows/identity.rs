//! Who the checked repository is and how GitHub writes its subjects: from the flags, from
//! git (`origin`'s URL, the default branch), or from GitHub's OIDC customization API.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use diagnosis::AccountSnapshot;
use serde::Deserialize;

use super::{CheckError, CheckWorkflowsArgs, Options, Repository, SubjectSettings, Template};

pub fn options(args: &CheckWorkflowsArgs, paths: &[PathBuf]) -> Result<Options, CheckError> {
    let root = git_dir(paths);
    let repository = match &args.repository {
        Some(text) => Some(
            Repository::parse(text)
                .ok_or_else(|| CheckError::Usage(format!("--repository {text:?}: expected OWNER/REPO")))?,
        ),
        None => root.as_deref().and_then(repository_from_git),
    };
    let default_branch = match &args.default_branch {
        Some(branch) => Some(branch.clone()),
        None => root.as_deref().and_then(default_branch_from_git),
    };
    let mut settings = SubjectSettings {
        repository,
        default_branch,
        template: Template::Default,
        immutable: None,
    };
    if let Some(api) = &args.github_api {
        let repository = settings.repository.as_ref().ok_or_else(|| {
            CheckError::Usage("--github-api needs the repository (--repository OWNER/REPO)".to_owned())
        })?;
        let customization = fetch_customization(api, repository)?;
        settings.template = customization.template;
        settings.immutable = customization.immutable;
    }
    if let Some(list) = &args.sub_template {
        settings.template = Template::parse(list);
    }
    if let Some(ids) = &args.immutable {
        settings.immutable = Some(parse_ids(ids).ok_or_else(|| {
            CheckError::Usage(format!("--immutable {ids:?}: expected OWNER_ID/REPO_ID (digits)"))
        })?);
    }
    let mut roles = BTreeMap::new();
    for entry in &args.roles {
        let (name, arn) = entry
            .split_once('=')
            .filter(|(n, a)| !n.is_empty() && a.starts_with("arn:"))
            .ok_or_else(|| {
                CheckError::Usage(format!(
                    "--role {entry:?}: expected NAME=arn:aws:iam::ACCOUNT:role/NAME"
                ))
            })?;
        roles.insert(name.to_owned(), arn.to_owned());
    }
    Ok(Options {
        settings,
        roles,
        accounts: load_accounts(&args.accounts)?,
    })
}

fn parse_ids(text: &str) -> Option<(String, String)> {
    let (owner, repo) = text.trim().split_once('/')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (digits(owner) && digits(repo)).then(|| (owner.to_owned(), repo.to_owned()))
}

/// The directory to ask git about: the first path given, or its folder.
fn git_dir(paths: &[PathBuf]) -> Option<PathBuf> {
    let first = paths.first()?;
    if first.is_dir() {
        Some(first.clone())
    } else {
        first.parent().map(|p| {
            if p.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                p.to_path_buf()
            }
        })
    }
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let output = Command::new("git").arg("-C").arg(dir).args(args).output().ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8(output.stdout).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

fn repository_from_git(dir: &Path) -> Option<Repository> {
    parse_remote(&git(dir, &["remote", "get-url", "origin"])?)
}

/// `https://github.com/o/r(.git)`, `git@github.com:o/r(.git)`, `ssh://git@github.com/o/r`.
pub fn parse_remote(url: &str) -> Option<Repository> {
    let url = url.trim();
    let path = if let Some(rest) = url.strip_prefix("git@") {
        rest.split_once(':')?.1
    } else {
        let rest = url.split_once("://")?.1;
        let rest = rest.split_once('@').map_or(rest, |(_, r)| r);
        rest.split_once('/')?.1
    };
    let path = path.trim_end_matches('/');
    let path = path.strip_suffix(".git").unwrap_or(path);
    Repository::parse(path)
}

fn default_branch_from_git(dir: &Path) -> Option<String> {
    if let Some(head) = git(dir, &["symbolic-ref", "--short", "refs/remotes/origin/HEAD"]) {
        return Some(head.strip_prefix("origin/").unwrap_or(&head).to_owned());
    }
    git(dir, &["symbolic-ref", "--short", "HEAD"])
}

#[derive(Deserialize)]
struct Customization {
    #[serde(default)]
    use_default: Option<bool>,
    #[serde(default)]
    include_claim_keys: Option<Vec<String>>,
    #[serde(default)]
    use_immutable_subject: Option<bool>,
    #[serde(default)]
    sub_claim_prefix: Option<String>,
}

pub struct SubjectCustomization {
    pub template: Template,
    pub immutable: Option<(String, String)>,
}

/// `GET {api}/repos/{owner}/{repo}/actions/oidc/customization/sub` with `GITHUB_TOKEN`.
pub fn fetch_customization(api: &str, repository: &Repository) -> Result<SubjectCustomization, CheckError> {
    let url = format!(
        "{}/repos/{}/{}/actions/oidc/customization/sub",
        api.trim_end_matches('/'),
        repository.owner,
        repository.name
    );
    let token = std::env::var("GITHUB_TOKEN").ok().filter(|t| !t.is_empty());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CheckError::GitHubApi(e.to_string()))?;
    let body = runtime.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .user_agent(concat!("oidc-watch/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let mut request = client
            .get(&url)
            .header("Accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28");
        if let Some(token) = &token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await?;
        let status = response.status();
        let text = response.text().await?;
        Ok::<_, reqwest::Error>((status, text))
    });
    let (status, text) = body.map_err(|e| CheckError::GitHubApi(format!("GET {url}: {e}")))?;
    if !status.is_success() {
        let hint = if token.is_none() {
            " (set GITHUB_TOKEN to a token that can read the repository's Actions settings)"
        } else {
            ""
        };
        return Err(CheckError::GitHubApi(format!("GET {url}: HTTP {status}{hint}")));
    }
    let customization: Customization =
        serde_json::from_str(&text).map_err(|e| CheckError::GitHubApi(format!("GET {url}: {e}")))?;
    let template = match (customization.use_default, customization.include_claim_keys) {
        (Some(false), Some(keys)) => Template::parse(&keys.join(",")),
        _ => Template::Default,
    };
    let immutable = match customization.use_immutable_subject {
        Some(true) => Some(
            customization
                .sub_claim_prefix
                .as_deref()
                .and_then(ids_from_prefix)
                .ok_or_else(|| {
                    CheckError::GitHubApi(format!(
                        "GET {url}: use_immutable_subject without a sub_claim_prefix of the form repo:OWNER@ID/REPO@ID; pass --immutable OWNER_ID/REPO_ID"
                    ))
                })?,
        ),
        _ => None,
    };
    Ok(SubjectCustomization { template, immutable })
}

/// `repo:OWNER@OWNER_ID/REPO@REPO_ID` gives the two ids.
fn ids_from_prefix(prefix: &str) -> Option<(String, String)> {
    let rest = prefix.strip_prefix("repo:")?;
    let (owner, repo) = rest.split_once('/')?;
    let owner_id = owner.rsplit_once('@')?.1;
    let repo_id = repo.rsplit_once('@')?.1;
    parse_ids(&format!("{owner_id}/{repo_id}"))
}

fn load_accounts(paths: &[PathBuf]) -> Result<HashMap<String, AccountSnapshot>, CheckError> {
    let mut accounts: HashMap<String, AccountSnapshot> = HashMap::new();
    for path in paths {
        let files = if path.is_dir() {
            crate::input::files_below(path, &[".json"])
        } else {
            vec![path.clone()]
        };
        for file in files {
            let fail = |message: String| CheckError::Snapshot {
                path: file.display().to_string(),
                message,
            };
            let text = std::fs::read_to_string(&file).map_err(|e| fail(e.to_string()))?;
            let snapshot = AccountSnapshot::from_json(&text).map_err(|e| fail(e.to_string()))?;
            match accounts.get_mut(&snapshot.account_id) {
                Some(existing) => existing.merge(snapshot),
                None => {
                    accounts.insert(snapshot.account_id.clone(), snapshot);
                }
            }
        }
    }
    Ok(accounts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remotes() {
        for url in [
            "https://github.com/acme/web.git",
            "https://github.com/acme/web",
            "git@github.com:acme/web.git",
            "ssh://git@github.com/acme/web.git",
            "https://x-access-token:abc@github.com/acme/web",
        ] {
            assert_eq!(parse_remote(url), Repository::parse("acme/web"), "{url}");
        }
        assert_eq!(parse_remote("not a url"), None);
    }

    #[test]
    fn immutable_prefix() {
        assert_eq!(
            ids_from_prefix("repo:J-xy@68347443/tf-platform-lab@1355558109"),
            Some(("68347443".to_owned(), "1355558109".to_owned()))
        );
    }
}
