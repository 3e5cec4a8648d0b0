//! `vigia init`.

use serde::Serialize;
use vigia_core::{InitReport, Result, config::TEMPLATE};

use crate::args::InitArgs;
use crate::output::Human;

#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum InitOutcome {
    Written(InitReport),
    Template { template: &'static str },
}

pub fn run(args: &InitArgs) -> Result<InitOutcome> {
    if args.print {
        return Ok(InitOutcome::Template { template: TEMPLATE });
    }
    vigia_core::init(&args.dir).map(InitOutcome::Written)
}

impl Human for InitOutcome {
    fn human(&self) -> String {
        match self {
            Self::Template { template } => (*template).to_owned(),
            Self::Written(r) => format!(
                "Wrote {config}\n      {identity}  (age private key: keep a copy OFF this machine; \
                 without it no backup can be read)\n      {name_key}  (name key)\n\
                 Backups are encrypted to {recipient}.\n\
                 Next: edit [odoo] and [postgres] in {config}, then run\n  \
                 vigia --config {config} config check\n",
                config = r.config.display(),
                identity = r.identity.display(),
                name_key = r.name_key.display(),
                recipient = r.recipient,
            ),
        }
    }
}

impl vigia_core::Outcome for InitOutcome {}
