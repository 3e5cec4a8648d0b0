//! What a name-key holder with write access to the store can do (issue 9's threat model): seal
//! any content to the recipients (their public keys are in every config) and re-seal a
//! backup's manifest and index with the name key, so that the index vouches for the change.

use std::io::Read;

use vigia_backup::SealedObject;
use vigia_backup::format::{
    BackupId, BackupIndex, BackupManifest, DumpObjects, index_key, manifest_key,
};
use vigia_backup::put_sealed;

use super::odoo::Stack;

impl Stack {
    /// `plain` sealed to the backup's recipients under `key`, as a backup would write it.
    pub async fn put_object(&self, key: &str, plain: Vec<u8>) -> SealedObject {
        put_sealed(
            self.job.store.as_ref(),
            key,
            &self.job.recipients,
            move || Ok(Box::new(std::io::Cursor::new(plain)) as Box<dyn Read>),
        )
        .await
        .unwrap()
    }

    /// Backup `id`'s index as stored (its mac checked).
    pub async fn index(&self, id: &BackupId) -> BackupIndex {
        let key = index_key(id);
        let bytes = self.job.store.get_bytes(&key).await.unwrap();
        self.job.name_key.open(&bytes, &key).unwrap()
    }

    /// Writes `index` at `key`, sealed with the name key.
    pub async fn put_index(&self, key: &str, index: &BackupIndex) {
        let sealed = self.job.name_key.seal(index).unwrap();
        self.job.store.put_bytes(key, sealed.into()).await.unwrap();
    }

    /// Replaces object `key` of backup `id` by `plain` sealed to the recipients, and re-seals
    /// the index so that it vouches for the new object's size and sha256.
    pub async fn replace_vouched(&self, id: &BackupId, key: &str, plain: Vec<u8>) {
        let object = self.put_object(key, plain).await;
        let mut index = self.index(id).await;
        for o in index.objects.iter_mut().filter(|o| o.key == key) {
            *o = object.clone();
        }
        self.put_index(&index_key(id), &index).await;
    }

    /// The keys of the objects holding backup `id`'s database: the archive (format 1), or the
    /// schema and the data streams (format 2).
    pub async fn dump_keys(&self, id: &BackupId) -> Vec<String> {
        let index = self.index(id).await;
        let objects = DumpObjects::of(&index).unwrap().all();
        objects.iter().map(|o| o.key.clone()).collect()
    }

    /// An object holding rows: the archive, or the last data stream (which holds rows
    /// whatever the plan: it takes every table the others do not name).
    pub async fn rows_key(&self, id: &BackupId) -> String {
        self.dump_keys(id).await.last().unwrap().clone()
    }

    /// `pg_dump -Fc -Z0` of `database` of the cluster, with `args` (sections).
    pub fn pg_dump(&self, database: &str, args: &[&str]) -> Vec<u8> {
        let out = std::process::Command::new(self.cluster.bin_dir().join("pg_dump"))
            .args(["-Fc", "-Z0", "-d"])
            .arg(self.cluster.conninfo(database))
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        out.stdout
    }

    /// Backup `id`'s database replaced, with the index vouching for it, by `database` of the
    /// cluster, dumped as the backup's format writes it: one archive, or its schema in place
    /// of the schema and its rows in place of every data stream.
    pub async fn replace_dump_vouched(&self, id: &BackupId, database: &str) {
        let dump = |sections: &[&str]| self.pg_dump(database, sections);
        let keys = self.dump_keys(id).await;
        if keys.len() == 1 {
            return self.replace_vouched(id, &keys[0], dump(&[])).await;
        }
        let schema = dump(&["--section=pre-data", "--section=post-data"]);
        self.replace_vouched(id, &keys[0], schema).await;
        for key in &keys[1..] {
            self.replace_vouched(id, key, dump(&["--section=data"]))
                .await;
        }
    }

    /// Backup `id`'s manifest changed by `change`, re-sealed with the name key, encrypted to
    /// the recipients and vouched for by a re-sealed index.
    pub async fn rewrite_manifest(&self, id: &BackupId, change: impl FnOnce(&mut BackupManifest)) {
        let key = manifest_key(id);
        let mut reader = vigia_backup::open_sealed(self.job.store.as_ref(), &key, &self.identity)
            .await
            .unwrap();
        let plain = tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            reader.read_to_end(&mut out).unwrap();
            out
        })
        .await
        .unwrap();
        let mut manifest: BackupManifest = self.job.name_key.open(&plain, &key).unwrap();
        change(&mut manifest);
        let sealed = self.job.name_key.seal(&manifest).unwrap();
        self.replace_vouched(id, &key, sealed).await;
    }
}
