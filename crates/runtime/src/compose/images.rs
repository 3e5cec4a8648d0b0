//! What a deploy asks of images: is a release there, pull it, pin the running one under a
//! tag of its own (locally built images have no registry digest; a rollback must never
//! switch to a tag that moved since). One-offs in an image are in runtime.rs.

use std::time::Duration;

use vigia_core::{Error, ErrorKind, Result};

use super::env_file;
use super::runtime::ComposeRuntime;

const INSPECT_LIMIT: Duration = Duration::from_mins(1);
/// A pull of a large image over a slow link.
const PULL_LIMIT: Duration = Duration::from_mins(30);

impl ComposeRuntime {
    /// The id of the image `reference` names on the engine; None when it has none.
    pub async fn image_id(&self, reference: &str) -> Result<Option<String>> {
        env_file::check_image(reference)?;
        let args = ["image", "inspect", "--format", "{{.Id}}", reference];
        match self.docker.call(&args, &[], INSPECT_LIMIT).await {
            Ok(out) => Ok(Some(String::from_utf8_lossy(&out.stdout).trim().to_owned())),
            Err(e) if e.kind() == ErrorKind::Io && no_such_image(e.message()) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Pulls `release` for Odoo's service (before anything stops).
    pub async fn pull(&self, release: &str) -> Result<()> {
        env_file::check_image(release)?;
        let service = self.odoo().await?;
        self.call(&["pull", &service], Some(release), PULL_LIMIT)
            .await
            .map(drop)
    }

    /// Tags the image Odoo's container runs (else the one the release variable names)
    /// `localhost/vigia-rollback/<service>:<id>`, and returns that tag.
    pub async fn pin_running(&self, id: &str) -> Result<String> {
        let tag = self.pin_tag(id).await?;
        let service = self.odoo().await?;
        let image = if let Some(container) = self.container_of(&service).await? {
            let args = ["inspect", "--format", "{{.Image}}", &container];
            let out = self.docker.call(&args, &[], INSPECT_LIMIT).await?;
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        } else {
            let current = vigia_core::ports::runtime::Runtime::current_release(self)
                .await?
                .unwrap_or_default();
            self.image_id(&current).await?.ok_or_else(|| {
                Error::invalid_input(format!(
                    "the running release {current} is not an image on this engine: nothing to \
                     roll back to"
                ))
            })?
        };
        let image = image.trim_start_matches("sha256:");
        if image.is_empty() || !image.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::new(
                ErrorKind::Io,
                format!("the engine named Odoo's image `{image}`: not an image id"),
            ));
        }
        self.docker
            .call(&["tag", image, &tag], &[], INSPECT_LIMIT)
            .await?;
        Ok(tag)
    }

    /// The tag deploy `id` pins what ran before it under: `localhost/` (never looked up in
    /// a registry), the project, the service, the id.
    pub async fn pin_tag(&self, id: &str) -> Result<String> {
        super::runtime::check_id(id)?;
        Ok(format!("{}:{id}", self.pin_repository().await?))
    }

    /// `localhost/vigia-rollback/<project>/<service>`: one per stack, as several compose
    /// projects may share an engine.
    async fn pin_repository(&self) -> Result<String> {
        Ok(format!(
            "localhost/vigia-rollback/{}/{}",
            self.project_name(),
            self.odoo().await?
        ))
    }

    /// Removes this stack's rollback tags of all but the newest `keep` deploys, never those
    /// in `protect` (what the last deploy returns to, and what it deployed): old images can
    /// then be pruned by the engine. Deploy ids start with their UTC time, so the newest
    /// sort last.
    pub async fn prune_pins(&self, keep: usize, protect: &[&str]) -> Result<Vec<String>> {
        let repository = self.pin_repository().await?;
        let format = "{{.Repository}}:{{.Tag}}";
        let out = self
            .docker
            .call(
                &["images", "--format", format, &repository],
                &[],
                INSPECT_LIMIT,
            )
            .await?;
        let prefix = format!("{repository}:");
        let mut tags: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::trim)
            .filter(|t| {
                t.strip_prefix(&prefix)
                    .is_some_and(|id| super::runtime::check_id(id).is_ok())
            })
            .map(str::to_owned)
            .collect();
        tags.sort();
        tags.dedup();
        let old = tags.len().saturating_sub(keep);
        let mut removed = Vec::new();
        let mut failed = Vec::new();
        for tag in tags
            .into_iter()
            .take(old)
            .filter(|t| !protect.contains(&t.as_str()))
        {
            // A tag only: the image itself goes when nothing else names it.
            match self.docker.call(&["rmi", &tag], &[], INSPECT_LIMIT).await {
                Ok(_) => removed.push(tag),
                Err(e) => failed.push(format!("{tag}: {}", e.message())),
            }
        }
        if !failed.is_empty() {
            return Err(Error::new(ErrorKind::Io, failed.join("; ")));
        }
        if !removed.is_empty() {
            tracing::info!("removed old rollback tags: {}", removed.join(", "));
        }
        Ok(removed)
    }

    /// The id of the service's own container (not a one-off), running or not.
    async fn container_of(&self, service: &str) -> Result<Option<String>> {
        Ok(self
            .containers()
            .await?
            .into_iter()
            .find(|c| c.service == service && !c.is_one_off() && !c.id.is_empty())
            .map(|c| c.id))
    }
}

/// The engines' words for an image they do not have.
fn no_such_image(message: &str) -> bool {
    let lowered = message.to_lowercase();
    lowered.contains("no such image") || lowered.contains("image not known")
}
