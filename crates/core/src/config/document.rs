//! The TOML document with its spans: environments merged over the base, and errors located at
//! the line of the key they are about.

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// A config error found in the document: the key it is about, where, and what is expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Located {
    pub key: Option<String>,
    pub span: Option<Range<usize>>,
    pub message: String,
}

pub(crate) type Table<'i> = DeTable<'i>;

pub(crate) fn parse(text: &str) -> Result<Spanned<Table<'_>>, Located> {
    Table::parse(text).map_err(|e| Located {
        key: None,
        span: e.span(),
        message: format!("not valid TOML: {}", e.message().trim()),
    })
}

/// The names of the `[environments.*]` tables, in file order.
pub(crate) fn environment_names(doc: &Table<'_>) -> Result<Vec<String>, Located> {
    let Some(envs) = doc.get("environments") else {
        return Ok(Vec::new());
    };
    let DeValue::Table(envs) = envs.get_ref() else {
        return Err(Located {
            key: Some("environments".into()),
            span: Some(envs.span()),
            message: "`environments` must be a table of `[environments.NAME]` tables".into(),
        });
    };
    envs.iter()
        .map(|(name, value)| match value.get_ref() {
            DeValue::Table(_) => Ok(name.get_ref().to_string()),
            _ => Err(Located {
                key: Some(format!("environments.{}", name.get_ref())),
                span: Some(name.span()),
                message: "an environment must be a table".into(),
            }),
        })
        .collect()
}

/// `default-env`, when set.
pub(crate) fn default_env(doc: &Table<'_>) -> Result<Option<String>, Located> {
    match doc.get("default-env") {
        None => Ok(None),
        Some(v) => match v.get_ref() {
            DeValue::String(s) => Ok(Some(s.to_string())),
            _ => Err(Located {
                key: Some("default-env".into()),
                span: Some(v.span()),
                message: "`default-env` must be a string naming an environment".into(),
            }),
        },
    }
}

/// The base table with environment `env` merged over it, and whether that environment is
/// production. Spans keep pointing into the original text, so errors name the right line.
pub(crate) fn effective<'i>(
    doc: &Spanned<Table<'i>>,
    env: Option<&str>,
) -> Result<(Spanned<Table<'i>>, bool), Located> {
    let mut base = doc.get_ref().clone();
    let envs = base.remove("environments");
    base.remove("default-env");
    let mut production = false;
    if let Some(name) = env {
        let over = envs
            .as_ref()
            .and_then(|e| e.get_ref().as_table())
            .and_then(|t| t.get(name))
            .and_then(|v| v.get_ref().as_table())
            .cloned()
            .ok_or_else(|| Located {
                key: Some(format!("environments.{name}")),
                span: None,
                message: format!("environment `{name}` is not defined"),
            })?;
        let mut over = over;
        if let Some(p) = over.remove("production") {
            production = p.get_ref().as_bool().ok_or_else(|| Located {
                key: Some(format!("environments.{name}.production")),
                span: Some(p.span()),
                message: "`production` must be true or false".into(),
            })?;
        }
        merge(&mut base, over);
    }
    Ok((Spanned::new(doc.span(), base), production))
}

fn merge<'i>(base: &mut Table<'i>, over: Table<'i>) {
    for (key, value) in over {
        let both_tables = value.get_ref().is_table()
            && base
                .get(key.get_ref().as_ref())
                .is_some_and(|b| b.get_ref().is_table());
        if both_tables {
            let target = base.get_mut(key.get_ref().as_ref()).expect("checked above");
            if let (DeValue::Table(b), DeValue::Table(o)) = (target.get_mut(), value.into_inner()) {
                merge(b, o);
            }
        } else {
            base.insert(key, value);
        }
    }
}

/// The span of `path` (`a.b.c`, with `name[i]` for array items) in `table`: the key's span,
/// or the item's for array items.
pub(crate) fn locate(table: &Table<'_>, path: &str) -> Option<Range<usize>> {
    let mut current = table;
    let mut segments = path.split('.').peekable();
    while let Some(segment) = segments.next() {
        let (name, index) = match segment.split_once('[') {
            Some((name, rest)) => (name, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (segment, None),
        };
        let (key, value) = current.get_key_value(name)?;
        let value = match (index, value.get_ref()) {
            (Some(i), DeValue::Array(items)) => items.get(i)?,
            (Some(_), _) => return Some(key.span()),
            (None, _) => value,
        };
        if segments.peek().is_none() {
            return Some(if index.is_some() {
                value.span()
            } else {
                key.span()
            });
        }
        match value.get_ref() {
            DeValue::Table(t) => current = t,
            _ => return Some(key.span()),
        }
    }
    None
}

/// 1-based line of a byte offset.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).unwrap_or(text).matches('\n').count() + 1
}

/// Turns a deserialization error into a located one with the full key path.
pub(crate) fn from_serde(err: &serde_path_to_error::Error<toml::de::Error>) -> Located {
    let parent = err.path().to_string();
    let parent = if parent == "." { String::new() } else { parent };
    let inner = err.inner();
    let message = inner.message().trim().to_owned();
    // serde_path_to_error includes an unknown field in the path, but not a missing one.
    let join = |field: &str| {
        if parent == field || parent.ends_with(&format!(".{field}")) {
            parent.clone()
        } else if parent.is_empty() {
            field.to_owned()
        } else {
            format!("{parent}.{field}")
        }
    };
    let field_in = |prefix: &str| {
        message
            .strip_prefix(prefix)
            .and_then(|rest| rest.split('`').next())
            .map(join)
    };
    if let Some(key) = field_in("unknown field `") {
        let expected = message
            .split_once("expected ")
            .map(|(_, e)| format!("; expected {e}"))
            .unwrap_or_default();
        return Located {
            message: format!("unknown key `{key}`{expected}"),
            key: Some(key),
            span: inner.span(),
        };
    }
    if let Some(key) = field_in("missing field `") {
        return Located {
            message: format!("missing required key `{key}`"),
            key: Some(key),
            span: inner.span(),
        };
    }
    Located {
        key: (!parent.is_empty()).then(|| parent.clone()),
        span: inner.span(),
        message: if parent.is_empty() {
            message
        } else {
            format!("bad value for `{parent}`: {message}")
        },
    }
}
