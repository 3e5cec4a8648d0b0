//! Running PostgreSQL's client programs (`pg_dump`, `pg_restore`, `psql`): the password and
//! TLS settings through the environment (never the command line), low CPU and I/O priority,
//! killed with their parent.

use std::io::{self, Read};
use std::path::Path;
use std::process::{Child, Command};
use std::thread::JoinHandle;

use crate::PgTarget;

impl PgTarget {
    /// `PROGRAM --host --port --username --no-password` with the password and sslmode in its
    /// environment, under nice/ionice, dying with the spawning thread.
    pub fn client_command(&self, name: &str, app_name: &str) -> Command {
        let mut command = low_priority(&self.program(name));
        command
            .arg("--no-password")
            .arg(format!("--host={}", self.host))
            .arg(format!("--port={}", self.port))
            .arg(format!("--username={}", self.user))
            .env("PGAPPNAME", app_name)
            .env_remove("PGPASSWORD");
        if let Some(password) = &self.password {
            command.env("PGPASSWORD", password.expose());
        }
        let inherited = std::env::vars_os().map(|(name, _)| name);
        for (name, value) in crate::tls::client_env(self, inherited) {
            match value {
                Some(value) => command.env(name, value),
                None => command.env_remove(name),
            };
        }
        vigia_core::process::die_with_parent(&mut command);
        command
    }

    /// Spawns `command`; a missing program is an error naming the package to install.
    pub fn spawn_client(&self, command: &mut Command, name: &str) -> io::Result<ClientChild> {
        command.spawn().map(ClientChild::new).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "cannot run {}: {e}; install the Debian package postgresql-client or set [postgres] bin-dir",
                    self.program(name).display()
                ),
            )
        })
    }
}

/// A client program that is killed and reaped if it is dropped before it was waited for: no
/// early return (a broken store, a failed check) leaves it running or a zombie.
#[derive(Debug)]
pub struct ClientChild(Option<Child>);

impl ClientChild {
    pub fn new(child: Child) -> Self {
        Self(Some(child))
    }

    pub fn get_mut(&mut self) -> &mut Child {
        self.0.as_mut().expect("not waited for yet")
    }

    /// Waits for it to exit (once; dropping it afterwards does nothing).
    pub fn wait(&mut self) -> io::Result<std::process::ExitStatus> {
        self.0.take().expect("not waited for yet").wait()
    }

    /// Kills it and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for ClientChild {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Collects a child's stderr on a thread, so a chatty child never blocks on a full pipe.
pub fn collect_stderr(child: &mut ClientChild) -> JoinHandle<String> {
    let mut stderr = child.get_mut().stderr.take().expect("piped stderr");
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    })
}

/// The last lines of a child's stderr, for an error message.
pub fn tail(stderr: &str, lines: usize) -> String {
    let mut tail: Vec<&str> = stderr.lines().rev().take(lines).collect();
    // With `-j`, workers dying after the first failure can push its ERROR line out of the
    // tail: the cause comes first then.
    if let Some(first) = stderr.lines().find(|l| l.contains("ERROR:"))
        && !tail.iter().any(|l| l.contains("ERROR:"))
    {
        tail.push(first);
    }
    tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
}

/// `nice -n 10 ionice -c 2 -n 7 PROGRAM` where nice and ionice exist: a backup must not slow
/// down the invoices being issued meanwhile.
fn low_priority(program: &Path) -> Command {
    let have = |tool: &str| {
        std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
    };
    if !have("nice") {
        return Command::new(program);
    }
    let mut command = Command::new("nice");
    command.args(["-n", "10"]);
    if have("ionice") {
        command.args(["ionice", "-c", "2", "-n", "7"]);
    }
    command.arg(program);
    command
}

#[cfg(test)]
mod tests {
    use super::tail;

    #[test]
    fn the_first_error_stays_when_later_lines_push_it_out_of_the_tail() {
        let stderr = "pg_restore: error: ERROR:  permission denied to alter role\nCONTEXT:  x\n\
                      a\nb\npg_restore: error: a worker process died unexpectedly\n";
        assert_eq!(
            tail(stderr, 2),
            "pg_restore: error: ERROR:  permission denied to alter role | b | \
             pg_restore: error: a worker process died unexpectedly"
        );
        assert_eq!(tail("x\ny\nz", 2), "y | z");
    }
}
