//! `[deploy] pre-hook` and `post-hook`: run with `sh -c` in `[deploy] root` for at most 5
//! minutes, told about the deploy through their environment. A pre-hook that fails refuses
//! the deploy before anything is touched; a post-hook that fails is a warning (the deploy
//! already ended).

use std::path::Path;
use std::time::Duration;

use vigia_core::{CancelToken, ErrorKind, Result};

use crate::commands::Command;

pub(crate) const HOOK_TIMEOUT: Duration = Duration::from_mins(5);

/// What a hook is told.
#[derive(Debug, Clone)]
pub(crate) struct HookEnv {
    pub id: String,
    /// `[environment]`, empty when unset.
    pub environment: String,
    pub release: String,
    pub previous: String,
    /// The modules upgraded; empty: no upgrade.
    pub upgrade: Vec<String>,
    pub performer: String,
}

impl HookEnv {
    fn vars(&self, outcome: Option<&str>) -> Vec<(String, String)> {
        let mut vars = vec![
            ("VIGIA_DEPLOY_ID", self.id.clone()),
            ("VIGIA_ENV", self.environment.clone()),
            ("VIGIA_RELEASE", self.release.clone()),
            ("VIGIA_PREVIOUS_RELEASE", self.previous.clone()),
            ("VIGIA_UPGRADE", self.upgrade.join(",")),
            ("VIGIA_PERFORMER", self.performer.clone()),
        ];
        if let Some(outcome) = outcome {
            vars.push(("VIGIA_OUTCOME", outcome.to_owned()));
        }
        vars.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
    }
}

/// The pre-hook; its failure refuses the deploy (`invalid_input`, 11).
pub(crate) async fn pre(
    command: &str,
    root: &Path,
    env: &HookEnv,
    log: &Path,
    cancel: &CancelToken,
    hide: Vec<String>,
) -> Result<()> {
    Command {
        what: "the pre-hook ([deploy] pre-hook)",
        line: command,
        dir: root,
        env: env.vars(None),
        log,
        timeout: HOOK_TIMEOUT,
        cancel,
        hide,
    }
    .run(ErrorKind::InvalidInput)
    .await
}

/// The post-hook, told the outcome; its failure is returned as a warning.
pub(crate) async fn post(
    command: &str,
    root: &Path,
    env: &HookEnv,
    outcome: &str,
    log: &Path,
    hide: Vec<String>,
) -> Option<String> {
    Command {
        what: "the post-hook ([deploy] post-hook)",
        line: command,
        dir: root,
        env: env.vars(Some(outcome)),
        log,
        timeout: HOOK_TIMEOUT,
        cancel: &CancelToken::new(),
        hide,
    }
    .run(ErrorKind::Io)
    .await
    .err()
    .map(|e| e.message().to_owned())
}
