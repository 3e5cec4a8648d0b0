//! How many key-derivation rounds a `.p12` asks for, read before anything is derived: its MAC,
//! every encrypted safe (the certificates, in a legacy file) and every shrouded key bag (PKCS#12
//! PBE or PBES2 with PBKDF2). A file from the filestore that asks for billions of rounds would
//! otherwise keep a thread busy for hours, whatever the check's timeout.

use der::asn1::OctetString;
use der::{Decode, Sequence};
use spki::AlgorithmIdentifierOwned;

const ID_DATA: &str = "1.2.840.113549.1.7.1";
const ID_ENCRYPTED_DATA: &str = "1.2.840.113549.1.7.6";
const SHROUDED_KEY_BAG: &str = "1.2.840.113549.1.12.10.1.2";
const PKCS12_PBE: &str = "1.2.840.113549.1.12.1.";
const PBES2: &str = "1.2.840.113549.1.5.13";
const PBKDF2: &str = "1.2.840.113549.1.5.12";

/// PBES2's parameters (RFC 8018): the key derivation and the cipher.
#[derive(Sequence)]
struct Pbes2Params {
    kdf: AlgorithmIdentifierOwned,
    scheme: AlgorithmIdentifierOwned,
}

/// The most rounds any part of `pfx` asks for; None when it is not PKCS#12 at all (opening
/// it says so).
pub(super) fn most_rounds(pfx: &[u8]) -> Option<u64> {
    let pfx = pkcs12::pfx::Pfx::from_der(pfx).ok()?;
    let mut most = pfx
        .mac_data
        .as_ref()
        .map_or(0, |m| u64::try_from(m.iterations).unwrap_or(u64::MAX));
    if pfx.auth_safe.content_type.to_string() != ID_DATA {
        return Some(most);
    }
    let Some(safes) = pfx
        .auth_safe
        .content
        .decode_as::<OctetString>()
        .ok()
        .and_then(|o| Vec::<cms::content_info::ContentInfo>::from_der(o.as_bytes()).ok())
    else {
        return Some(most);
    };
    for safe in safes {
        match safe.content_type.to_string().as_str() {
            ID_ENCRYPTED_DATA => {
                if let Ok(data) = safe
                    .content
                    .decode_as::<cms::encrypted_data::EncryptedData>()
                {
                    most = most.max(rounds(&data.enc_content_info.content_enc_alg));
                }
            }
            ID_DATA => {
                let bags = safe
                    .content
                    .decode_as::<OctetString>()
                    .ok()
                    .and_then(|o| pkcs12::safe_bag::SafeContents::from_der(o.as_bytes()).ok())
                    .unwrap_or_default();
                for bag in bags {
                    if bag.bag_id.to_string() == SHROUDED_KEY_BAG
                        && let Ok(key) =
                            pkcs12::pbe_params::EncryptedPrivateKeyInfo::from_der(&bag.bag_value)
                    {
                        most = most.max(rounds(&key.encryption_algorithm));
                    }
                }
            }
            _ => {}
        }
    }
    Some(most)
}

/// The rounds one algorithm's parameters ask for; 0 when they cannot be read (opening the
/// file fails on them anyway).
fn rounds(algorithm: &AlgorithmIdentifierOwned) -> u64 {
    let oid = algorithm.oid.to_string();
    let Some(params) = &algorithm.parameters else {
        return 0;
    };
    if oid.starts_with(PKCS12_PBE) {
        return params
            .decode_as::<pkcs12::pbe_params::Pkcs12PbeParams>()
            .map_or(0, |p| u64::try_from(p.iterations).unwrap_or(u64::MAX));
    }
    if oid == PBES2
        && let Ok(pbes2) = params.decode_as::<Pbes2Params>()
        && pbes2.kdf.oid.to_string() == PBKDF2
        && let Some(kdf) = &pbes2.kdf.parameters
    {
        // The cipher (`scheme`) is not judged: only the rounds are.
        let _ = &pbes2.scheme;
        return kdf
            .decode_as::<pkcs12::pbe_params::Pbkdf2Params>()
            .map_or(0, |p| u64::from(p.iteration_count));
    }
    0
}
