//! `vigia alert test|silence|unsilence`.

use std::fmt::Write;

use vigia_core::Result;
use vigia_core::config::HumanDuration;
use vigia_health::alerts::{self, AlertTest, Alerting, Silence, SilenceRequest, Unsilenced};

use super::{load_config, runtime};
use crate::args::Cli;
use crate::output::Human;

pub fn test(cli: &Cli) -> Result<AlertTest> {
    let config = load_config(cli)?;
    let alerting = Alerting::from_config(&config)?;
    runtime()?.block_on(alerting.test())
}

pub fn silence(cli: &Cli, length: HumanDuration, reason: &str) -> Result<Silence> {
    let config = load_config(cli)?;
    alerts::silence(
        &config,
        &SilenceRequest {
            length,
            reason: reason.to_owned(),
        },
    )
}

pub fn unsilence(cli: &Cli) -> Result<Unsilenced> {
    alerts::unsilence(&load_config(cli)?)
}

impl Human for AlertTest {
    fn human(&self) -> String {
        let mut out = String::new();
        for c in &self.channels {
            let _ = match &c.error {
                None => writeln!(out, "{:<8} sent", c.channel),
                Some(e) => writeln!(out, "{:<8} FAILED: {e}", c.channel),
            };
        }
        out
    }
}

impl Human for Silence {
    fn human(&self) -> String {
        format!(
            "alerts silenced until {} ({}, by {})\n",
            self.until.strftime("%Y-%m-%d %H:%M:%S UTC"),
            self.reason,
            self.by
        )
    }
}

impl Human for Unsilenced {
    fn human(&self) -> String {
        if self.ended {
            "the silence is over: alerts are sent again\n".to_owned()
        } else {
            "no silence was in force\n".to_owned()
        }
    }
}
