//! `vigia completions SHELL` and `vigia man`: the shell completion script and the man
//! pages, both made from the clap definitions, for users who install with cargo (the Debian
//! package ships them made).

use std::path::{Path, PathBuf};

use clap::CommandFactory;
use serde::Serialize;
use vigia_core::{Error, Result};

use crate::args::Cli;
use crate::output::Human;

#[derive(Debug, Serialize)]
pub struct Completions {
    pub shell: String,
    pub script: String,
}

pub fn completions(shell: clap_complete::Shell) -> Result<Completions> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "vigia", &mut script);
    let script = String::from_utf8(script).map_err(|e| Error::internal(e.to_string()))?;
    Ok(Completions {
        shell: shell.to_string(),
        script,
    })
}

impl Human for Completions {
    fn human(&self) -> String {
        self.script.clone()
    }
}

impl vigia_core::Outcome for Completions {}

#[derive(Debug, Serialize)]
pub struct ManPages {
    pub dir: PathBuf,
    pub pages: Vec<String>,
}

/// One page per command and subcommand (`vigia-backup-list.1`), as git names its own.
pub fn man(dir: &Path) -> Result<ManPages> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
    let mut pages = Vec::new();
    write_pages(&Cli::command(), "vigia", dir, &mut pages)?;
    Ok(ManPages {
        dir: dir.to_owned(),
        pages,
    })
}

fn write_pages(
    command: &clap::Command,
    name: &str,
    dir: &Path,
    pages: &mut Vec<String>,
) -> Result<()> {
    let command = command.clone().name(name.to_owned());
    let mut page = Vec::new();
    clap_mangen::Man::new(command.clone())
        .render(&mut page)
        .map_err(|e| Error::internal(format!("the man page of {name}: {e}")))?;
    let file = format!("{name}.1");
    let path = dir.join(&file);
    vigia_core::disk::write_durably(&path, &page).map_err(|e| Error::io("write", &path, e))?;
    pages.push(file);
    for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
        write_pages(sub, &format!("{name}-{}", sub.get_name()), dir, pages)?;
    }
    Ok(())
}

impl Human for ManPages {
    fn human(&self) -> String {
        format!(
            "Wrote {} man pages to {} (read one with `man -l {}`)\n",
            self.pages.len(),
            self.dir.display(),
            self.dir.join("vigia.1").display()
        )
    }
}

impl vigia_core::Outcome for ManPages {}
