//! The name key: 32 secret bytes that name filestore objects (so the store does not reveal
//! which files exist) and authenticate every JSON file in the store (`mac`).

use hmac::{Hmac, KeyInit, Mac};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::Sha256;
use vigia_core::config::Secret;
use vigia_core::{Error, ErrorKind, Result};
use zeroize::Zeroizing;

type HmacSha256 = Hmac<Sha256>;

#[derive(Clone)]
pub struct NameKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for NameKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NameKey([redacted])")
    }
}

impl NameKey {
    /// From the 64 hex characters of the name-key file (a trailing newline is allowed).
    pub fn from_secret(secret: &Secret) -> Result<Self> {
        let text = secret.expose().trim_end_matches(['\n', '\r']);
        let mut bytes = Zeroizing::new([0u8; 32]);
        if text.len() != 64 || hex::decode_to_slice(text, bytes.as_mut()).is_err() {
            return Err(Error::config(
                "the name key must be 64 hexadecimal characters (32 random bytes); `vigia init` makes one",
            )
            .with_key("backup.name-key"));
        }
        Ok(Self(bytes))
    }

    /// The 64 hex characters, as kept in the name-key file and `keys/name-key.age`.
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(*self.0))
    }

    fn hmac(&self) -> HmacSha256 {
        <HmacSha256 as KeyInit>::new_from_slice(self.0.as_ref()).expect("HMAC takes any key length")
    }

    /// The object name of a filestore file: hex HMAC-SHA256 of its 40-char lowercase sha1.
    pub fn object_name(&self, sha1_hex: &str) -> String {
        let mut mac = self.hmac();
        mac.update(sha1_hex.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// `doc` as JSON with its `mac` field set: the HMAC of the canonical JSON (sorted keys, no
    /// spaces) of the document without `mac`.
    pub fn seal<T: Serialize>(&self, doc: &T) -> Result<Vec<u8>> {
        let mut value = serde_json::to_value(doc)
            .map_err(|e| Error::internal(format!("cannot serialize: {e}")))?;
        let object = value
            .as_object_mut()
            .ok_or_else(|| Error::internal("only JSON objects carry a mac"))?;
        object.remove("mac");
        let mac = self.mac_of(&serde_json::Value::Object(object.clone()));
        object.insert("mac".into(), mac.into());
        Ok(canonical_json(&value).into_bytes())
    }

    /// Parses a sealed document, refusing it when its `mac` is missing or wrong. `what` names
    /// it (the store key) in the error.
    pub fn open<T: DeserializeOwned>(&self, bytes: &[u8], what: &str) -> Result<T> {
        let integrity = |problem: String| {
            Error::new(ErrorKind::Integrity, format!("{what}: {problem}")).with_object(what)
        };
        let mut value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| integrity(format!("not valid JSON: {e}")))?;
        let object = value
            .as_object_mut()
            .ok_or_else(|| integrity("not a JSON object".into()))?;
        let stored = object
            .remove("mac")
            .and_then(|m| m.as_str().map(str::to_owned))
            .ok_or_else(|| integrity("it has no mac".into()))?;
        let stored = hex::decode(&stored).map_err(|_| integrity("its mac is not hex".into()))?;
        let mut mac = self.hmac();
        mac.update(canonical_json(&value).as_bytes());
        mac.verify_slice(&stored).map_err(|_| {
            integrity("its mac does not match: the file was altered, or the name key is not the one it was written with".into())
        })?;
        serde_json::from_value(value).map_err(|e| integrity(format!("unexpected content: {e}")))
    }

    fn mac_of(&self, value: &serde_json::Value) -> String {
        let mut mac = self.hmac();
        mac.update(canonical_json(value).as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

/// JSON with object keys sorted and no spaces, whatever serde_json's map order is built with.
pub fn canonical_json(value: &serde_json::Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &serde_json::Value, out: &mut String) {
    match value {
        serde_json::Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::from(key.as_str()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        serde_json::Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn key(byte: u8) -> NameKey {
        NameKey::from_secret(&Secret::new(format!("{}\n", hex::encode([byte; 32])))).unwrap()
    }

    #[test]
    fn object_name_is_the_hmac_of_the_sha1_hex() {
        // HMAC-SHA256(key = 32 x 0x00, message = sha1 of the empty string), by Python's hmac.
        let name = key(0).object_name("da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(
            name,
            "92f7ba165b778fb5d4e27d09e656e2498a2d5846b17784954c94b63542a5c4d9"
        );
        assert_ne!(
            name,
            key(1).object_name("da39a3ee5e6b4b0d3255bfef95601890afd80709")
        );
    }

    #[test]
    fn sealed_documents_open_and_tampering_is_detected() {
        let doc = json!({"id": "x", "objects": [{"key": "a", "size_bytes": 3}]});
        let sealed = key(7).seal(&doc).unwrap();
        let opened: serde_json::Value = key(7).open(&sealed, "backups/x/index.json").unwrap();
        assert_eq!(opened, doc);
        let tampered = String::from_utf8(sealed.clone())
            .unwrap()
            .replace("\"size_bytes\":3", "\"size_bytes\":4");
        let err = key(7)
            .open::<serde_json::Value>(tampered.as_bytes(), "backups/x/index.json")
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Integrity);
        assert!(err.message().contains("backups/x/index.json"));
        assert!(
            key(8).open::<serde_json::Value>(&sealed, "k").is_err(),
            "another key fails"
        );
    }

    #[test]
    fn canonical_json_sorts_keys_without_spaces() {
        assert_eq!(
            canonical_json(&json!({"b": 1, "a": [true, null, "x"]})),
            r#"{"a":[true,null,"x"],"b":1}"#
        );
    }

    #[test]
    fn malformed_name_key_is_a_config_error() {
        let err = NameKey::from_secret(&Secret::new("abc".into())).unwrap_err();
        assert_eq!(err.context().key.as_deref(), Some("backup.name-key"));
    }
}
