//! `docker compose ps --all --format json`: a JSON array before Compose 2.21, one object per
//! line since. Each container names its service and its state; a service is running when one
//! of its containers is, and a mapped service with no container is stopped. Health is not
//! read from here (healthchecks never leave "starting" under podman without systemd): vigia
//! probes it; a `run` container (an upgrade) is not the service. Output of any other shape
//! is unknown, shown clipped.

use serde::Deserialize;
use vigia_core::ports::runtime::ServiceState;

/// One container, as `ps` describes it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Container {
    #[serde(rename = "Service")]
    pub service: String,
    /// `running`, `exited`, `created`, `restarting`, `paused`, `dead`.
    #[serde(rename = "State")]
    pub state: String,
    #[serde(rename = "ID", default)]
    pub id: String,
    #[serde(rename = "Name", default)]
    pub name: String,
    /// `k=v,k=v` since 2.21, an object before.
    #[serde(rename = "Labels", default)]
    pub labels: serde_json::Value,
}

impl Container {
    /// A `run` container (an upgrade, a hash listing): not the service running.
    pub fn is_one_off(&self) -> bool {
        const LABEL: &str = "com.docker.compose.oneoff";
        match &self.labels {
            serde_json::Value::String(text) => text
                .split(',')
                .any(|pair| pair.eq_ignore_ascii_case(&format!("{LABEL}=True"))),
            serde_json::Value::Object(map) => map
                .get(LABEL)
                .and_then(serde_json::Value::as_str)
                .is_some_and(|v| v.eq_ignore_ascii_case("true")),
            _ => false,
        }
    }
}

/// The containers `output` lists; an error (the output's first 200 bytes, cleaned) when it
/// is neither shape.
pub fn parse(output: &str) -> Result<Vec<Container>, String> {
    let text = output.trim();
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let parsed = if text.starts_with('[') {
        serde_json::from_str::<Vec<Container>>(text).map_err(|e| e.to_string())
    } else {
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str::<Container>(l).map_err(|e| e.to_string()))
            .collect()
    };
    parsed.map_err(|e| {
        let head: String = text
            .chars()
            .take(200)
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        format!("`docker compose ps` answered in a shape vigia does not know ({e}): {head}")
    })
}

/// The state of `service` in `ps`'s answer: running when one of its containers runs.
pub fn state_of(answer: &Result<Vec<Container>, String>, service: &str) -> ServiceState {
    match answer {
        Err(reason) => ServiceState::Unknown {
            reason: reason.clone(),
        },
        Ok(containers) => {
            if containers
                .iter()
                .any(|c| c.service == service && c.state == "running" && !c.is_one_off())
            {
                ServiceState::Running
            } else {
                ServiceState::Stopped
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_shapes_are_read_and_a_missing_service_is_stopped() {
        let array = r#"[{"Service":"odoo","State":"running","Health":"starting"},
                        {"Service":"db","State":"exited","ExitCode":1}]"#;
        let lines = "{\"Service\":\"odoo\",\"State\":\"running\"}\n\
                     {\"Service\":\"db\",\"State\":\"exited\"}\n";
        for output in [array, lines] {
            let answer = parse(output);
            assert_eq!(state_of(&answer, "odoo"), ServiceState::Running, "{output}");
            assert_eq!(state_of(&answer, "db"), ServiceState::Stopped);
            assert_eq!(state_of(&answer, "nginx"), ServiceState::Stopped);
        }
        assert_eq!(parse("").unwrap(), Vec::new());
        // An upgrade's one-off of the service does not make the service run.
        let one_off = [
            r#"{"Service":"odoo","State":"running","Labels":"a=b,com.docker.compose.oneoff=True"}"#,
            r#"[{"Service":"odoo","State":"running","Labels":{"com.docker.compose.oneoff":"True"}}]"#,
        ];
        for output in one_off {
            assert_eq!(
                state_of(&parse(output), "odoo"),
                ServiceState::Stopped,
                "{output}"
            );
        }
        let service =
            r#"{"Service":"odoo","State":"running","Labels":"com.docker.compose.oneoff=False"}"#;
        assert_eq!(state_of(&parse(service), "odoo"), ServiceState::Running);
        assert_eq!(parse("[]").unwrap(), Vec::new());
    }

    #[test]
    fn another_shape_is_unknown_with_its_first_bytes_cleaned() {
        let odd = format!("NAME  STATUS\nodoo\u{1b}[31m up {}", "x".repeat(400));
        let answer = parse(&odd);
        let ServiceState::Unknown { reason } = state_of(&answer, "odoo") else {
            panic!("{answer:?}");
        };
        assert!(reason.contains("NAME  STATUS odoo [31m up"), "{reason}");
        assert!(reason.len() < 400, "clipped: {}", reason.len());
        assert!(!reason.contains('\u{1b}'));
        assert!(parse(r#"{"Name":"x"}"#).is_err(), "no service named");
    }
}
