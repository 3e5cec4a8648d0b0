//! An Odoo zip's `dump.sql` made safe to pipe into psql. psql meta-commands run a shell (`\!`)
//! or connect elsewhere (`\connect`), outside the one transaction; so vigia writes its own
//! `\restrict <random key>` first and never lifts it (psql then refuses every meta-command but
//! `\unrestrict <that key>`, which the zip cannot know). pg_dump 15.14+ brackets a plain dump
//! with its own `\restrict K` ... `\unrestrict K`: exactly that pair is dropped. Any other
//! backslash line outside COPY data is refused before psql sees it.

use std::io::{self, BufRead, Read, Write};

/// Lines are read up to this many bytes at a time (COPY rows can be any length).
const LINE_CHUNK: u64 = 64 * 1024;

/// Why the SQL did not all reach psql.
#[derive(Debug)]
pub enum SqlCopyError {
    Read(io::Error),
    Write(io::Error),
    /// Line `line` (1-based) is a meta-command vigia does not run.
    MetaCommand {
        line: u64,
        text: String,
    },
}

/// pg_dump's own `\restrict` pair, as far as it was seen.
enum DumpPair {
    Unseen,
    Restricted(String),
    Done,
}

/// Copies `from` to `to` as psql must read it: `\restrict key` first, then the SQL.
pub fn copy_restricted(
    from: &mut impl BufRead,
    to: &mut impl Write,
    key: &str,
) -> Result<(), SqlCopyError> {
    writeln!(to, "\\restrict {key}").map_err(SqlCopyError::Write)?;
    let (mut in_copy, mut pair, mut number) = (false, DumpPair::Unseen, 0u64);
    let mut line = Vec::new();
    loop {
        line.clear();
        Read::take(&mut *from, LINE_CHUNK)
            .read_until(b'\n', &mut line)
            .map_err(SqlCopyError::Read)?;
        if line.is_empty() {
            return Ok(());
        }
        number += 1;
        let whole = line.ends_with(b"\n") || (line.len() as u64) < LINE_CHUNK;
        if in_copy {
            in_copy = !matches!(trim_end(&line), b"\\.");
        } else if line.starts_with(b"\\") {
            if !whole || !pg_dump_pair(&mut pair, trim_end(&line)) {
                return Err(SqlCopyError::MetaCommand {
                    line: number,
                    text: String::from_utf8_lossy(&line[..line.len().min(80)])
                        .trim_end()
                        .to_owned(),
                });
            }
            continue;
        } else {
            in_copy = whole && starts_copy(trim_end(&line));
        }
        to.write_all(&line).map_err(SqlCopyError::Write)?;
        if !whole {
            pass_rest_of_line(from, to)?;
        }
    }
}

/// Whether `line` is pg_dump's own `\restrict K` (first) or `\unrestrict K` (same K, after):
/// dropped. Anything else is refused.
fn pg_dump_pair(pair: &mut DumpPair, line: &[u8]) -> bool {
    let text = String::from_utf8_lossy(line);
    match (&*pair, text.split_once(' ')) {
        (DumpPair::Unseen, Some(("\\restrict", key))) if is_key(key) => {
            *pair = DumpPair::Restricted(key.to_owned());
            true
        }
        (DumpPair::Restricted(seen), Some(("\\unrestrict", key))) if key == seen => {
            *pair = DumpPair::Done;
            true
        }
        _ => false,
    }
}

fn is_key(key: &str) -> bool {
    !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// `COPY <table> (<columns>) FROM stdin;`, as pg_dump writes it: data lines follow until `\.`.
fn starts_copy(line: &[u8]) -> bool {
    line.starts_with(b"COPY ") && line.ends_with(b" FROM stdin;")
}

fn trim_end(line: &[u8]) -> &[u8] {
    let end = line
        .iter()
        .rposition(|b| !matches!(b, b'\n' | b'\r'))
        .map_or(0, |i| i + 1);
    &line[..end]
}

/// Copies the rest of an over-long line, through its newline.
fn pass_rest_of_line(from: &mut impl BufRead, to: &mut impl Write) -> Result<(), SqlCopyError> {
    loop {
        let buf = from.fill_buf().map_err(SqlCopyError::Read)?;
        if buf.is_empty() {
            return Ok(());
        }
        let (n, done) = buf
            .iter()
            .position(|b| *b == b'\n')
            .map_or((buf.len(), false), |i| (i + 1, true));
        to.write_all(&buf[..n]).map_err(SqlCopyError::Write)?;
        from.consume(n);
        if done {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy(sql: &str) -> Result<String, SqlCopyError> {
        let mut out = Vec::new();
        copy_restricted(&mut sql.as_bytes(), &mut out, "K1")?;
        Ok(String::from_utf8(out).unwrap())
    }

    fn refused_line(sql: &str) -> u64 {
        match copy(sql) {
            Err(SqlCopyError::MetaCommand { line, .. }) => line,
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn vigia_restricts_first_and_drops_pg_dumps_own_pair() {
        let sql =
            "\\restrict abc\nSET x = 1;\nCOPY t (a) FROM stdin;\n\\N\t1\n\\.\n\\unrestrict abc\n";
        assert_eq!(
            copy(sql).unwrap(),
            "\\restrict K1\nSET x = 1;\nCOPY t (a) FROM stdin;\n\\N\t1\n\\.\n"
        );
    }

    #[test]
    fn every_other_meta_command_is_refused() {
        assert_eq!(refused_line("SELECT 1;\n\\! id\n"), 2);
        assert_eq!(refused_line("\\connect odoo\n"), 1);
        assert_eq!(refused_line("\\restrict a\n\\unrestrict b\n"), 2);
        assert_eq!(
            refused_line("\\restrict a\n\\unrestrict a\n\\unrestrict a\n"),
            3
        );
        assert_eq!(refused_line("\\restrict a\n\\restrict b\n"), 2);
        // After the end of COPY data, a backslash line is a meta-command again.
        assert_eq!(refused_line("COPY t FROM stdin;\n\\.\n\\! id\n"), 3);
    }

    #[test]
    fn long_lines_pass_whole_and_a_long_meta_command_is_refused() {
        let long = "x".repeat(200_000);
        let sql = format!("SELECT '{long}';\nSELECT 2;\n");
        assert_eq!(copy(&sql).unwrap(), format!("\\restrict K1\n{sql}"));
        assert_eq!(refused_line(&format!("\\echo {long}\n")), 1);
    }
}
