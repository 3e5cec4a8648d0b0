//! Which objects of a backup hold its database: one `pg_dump` archive (format 1), or the
//! schema and the table data in numbered streams (format 2).

use super::{BackupId, BackupIndex, Problem, SealedObject, index_key};

/// A backup whose database is one `pg_dump -Fc` archive: `dump.age`.
pub const FORMAT_ONE_ARCHIVE: u32 = 1;
/// A backup in parts: `schema.age` (pre-data and post-data) and `data-<n>.age`, n = 0, 1, ...
pub const FORMAT_PARTS: u32 = 2;

/// `backups/<id>/dump.age`: encrypted zstd of `pg_dump -Fc` (format 1).
pub fn dump_key(id: &BackupId) -> String {
    format!("backups/{id}/dump.age")
}

/// `backups/<id>/schema.age`: encrypted zstd of `pg_dump -Fc --section=pre-data
/// --section=post-data` (format 2).
pub fn schema_key(id: &BackupId) -> String {
    format!("backups/{id}/schema.age")
}

/// `backups/<id>/data-<n>.age`: encrypted zstd of `pg_dump -Fc --section=data` for one share
/// of the tables (format 2).
pub fn data_key(id: &BackupId, n: usize) -> String {
    format!("backups/{id}/data-{n}.age")
}

/// The objects an index names for its database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DumpObjects<'i> {
    OneArchive(&'i SealedObject),
    Parts {
        schema: &'i SealedObject,
        data: &'i [SealedObject],
    },
}

impl<'i> DumpObjects<'i> {
    /// What `index` names for the database, or why it names no usable set: an unknown format,
    /// a missing archive or schema, data streams that are not numbered 0, 1, ... in order.
    pub fn of(index: &'i BackupIndex) -> Result<Self, Problem> {
        let id = &index.id;
        let find = |key: String| {
            index
                .objects
                .iter()
                .find(|o| o.key == key)
                .ok_or_else(|| Problem::new(&key, "the index does not list it"))
        };
        match index.format {
            FORMAT_ONE_ARCHIVE => find(dump_key(id)).map(Self::OneArchive),
            FORMAT_PARTS => {
                let schema = find(schema_key(id))?;
                let data = data_streams(index)?;
                Ok(Self::Parts { schema, data })
            }
            other => Err(Problem::new(
                index_key(id),
                format!(
                    "store format {other} is not one this vigia reads (1 or 2): read it with \
                     the vigia that wrote it ({})",
                    index.vigia_version
                ),
            )),
        }
    }

    /// Every object, the schema first.
    pub fn all(&self) -> Vec<&'i SealedObject> {
        match *self {
            Self::OneArchive(dump) => vec![dump],
            Self::Parts { schema, data } => std::iter::once(schema).chain(data).collect(),
        }
    }

    /// Whether `key` is one of them.
    pub fn holds(&self, key: &str) -> bool {
        self.all().iter().any(|o| o.key == key)
    }
}

/// The `data-<n>.age` objects, which the writer lists together in order: one at least, and
/// numbered 0, 1, ... with no gap and nothing else named like them.
fn data_streams(index: &BackupIndex) -> Result<&[SealedObject], Problem> {
    let first = data_key(&index.id, 0);
    let prefix = format!("backups/{}/data-", index.id);
    let start = index
        .objects
        .iter()
        .position(|o| o.key == first)
        .ok_or_else(|| Problem::new(&first, "the index does not list it"))?;
    let count = index.objects[start..]
        .iter()
        .enumerate()
        .take_while(|(n, o)| o.key == data_key(&index.id, *n))
        .count();
    let most = vigia_core::config::MAX_DUMP_JOBS as usize;
    if count > most {
        return Err(Problem::new(
            data_key(&index.id, most),
            format!("the index lists {count} data streams: vigia writes at most {most}"),
        ));
    }
    let streams = start..start + count;
    let stray = index
        .objects
        .iter()
        .enumerate()
        .find(|(i, o)| o.key.starts_with(&prefix) && !streams.contains(i))
        .map(|(_, o)| o);
    if let Some(stray) = stray {
        return Err(Problem::new(
            &stray.key,
            format!(
                "the index lists it apart from data-0 .. data-{}: not a stream of this backup",
                count - 1
            ),
        ));
    }
    Ok(&index.objects[streams])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::FORMAT;

    fn object(key: String) -> SealedObject {
        SealedObject {
            key,
            size_bytes: 1,
            sha256: String::new(),
            plain_bytes: 0,
        }
    }

    fn index(format: u32, keys: &[String]) -> BackupIndex {
        let at: jiff::Timestamp = "2026-11-28T02:15:30Z".parse().unwrap();
        BackupIndex {
            format,
            id: "20261128T021530Z-k3f9".parse().unwrap(),
            database: "odoo".into(),
            started_at: at,
            finished_at: at,
            vigia_version: "0.1.0".into(),
            objects: keys.iter().cloned().map(object).collect(),
        }
    }

    #[test]
    fn each_format_names_its_objects() {
        let id: BackupId = "20261128T021530Z-k3f9".parse().unwrap();
        let one = index(1, &[dump_key(&id), "objects/x".into()]);
        assert_eq!(DumpObjects::of(&one).unwrap().all(), vec![&one.objects[0]]);
        let keys = [
            schema_key(&id),
            data_key(&id, 0),
            data_key(&id, 1),
            "objects/x".into(),
        ];
        let two = index(FORMAT, &keys);
        let parts = DumpObjects::of(&two).unwrap();
        assert_eq!(parts.all(), two.objects[..3].iter().collect::<Vec<_>>());
        assert!(parts.holds(&data_key(&id, 1)) && !parts.holds("objects/x"));
    }

    #[test]
    fn a_missing_gapped_or_stray_stream_and_an_unknown_format_are_problems() {
        let id: BackupId = "20261128T021530Z-k3f9".parse().unwrap();
        let problem = |format, keys: &[String]| DumpObjects::of(&index(format, keys)).unwrap_err();
        assert_eq!(problem(1, &[schema_key(&id)]).object, dump_key(&id));
        assert_eq!(
            problem(2, &[dump_key(&id), data_key(&id, 0)]).object,
            schema_key(&id)
        );
        assert_eq!(problem(2, &[schema_key(&id)]).object, data_key(&id, 0));
        let gap = [schema_key(&id), data_key(&id, 0), data_key(&id, 2)];
        assert_eq!(problem(2, &gap).object, data_key(&id, 2));
        let twice = [schema_key(&id), data_key(&id, 0), data_key(&id, 0)];
        assert_eq!(problem(2, &twice).object, data_key(&id, 0));
        let many: Vec<String> = std::iter::once(schema_key(&id))
            .chain((0..17).map(|n| data_key(&id, n)))
            .collect();
        assert_eq!(problem(2, &many).object, data_key(&id, 16));
        let unknown = problem(3, &[dump_key(&id)]);
        assert!(
            unknown.problem.contains("store format 3"),
            "{}",
            unknown.problem
        );
    }
}
