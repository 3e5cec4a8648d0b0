//! The databases vigia names itself: a restore's copy, the live database set aside by a swap,
//! a drill's scratch database. Cleanup finds them only through the records that name them.

use super::BackupId;

/// A backup id as part of a name: lower case, `_` for `-` (`20261128t021530z_k3f9`).
pub fn id_part(id: &BackupId) -> String {
    id.as_str().to_lowercase().replace('-', "_")
}

/// The copy a restore that replaces the live database makes first: `vigia_restore_<suffix>`.
pub fn restore_copy(suffix: &str) -> String {
    format!("vigia_restore_{suffix}")
}

/// Where a swap moves the live database: `<live>_pre_restore_<suffix>`.
pub fn set_aside(live: &str, suffix: &str) -> String {
    format!("{live}_pre_restore_{suffix}")
}

/// A drill's scratch database: `vigia_drill_20261128t021530z_k3f9`, 33 bytes, well under
/// PostgreSQL's 63.
pub fn drill_scratch(id: &BackupId) -> String {
    format!("vigia_drill_{}", id_part(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_lower_case_and_fit_postgres() {
        let id: BackupId = "20261128T021530Z-k3f9".parse().unwrap();
        assert_eq!(drill_scratch(&id), "vigia_drill_20261128t021530z_k3f9");
        assert_eq!(
            restore_copy(&id_part(&id)),
            "vigia_restore_20261128t021530z_k3f9"
        );
        assert_eq!(
            set_aside("odoo", &id_part(&id)),
            "odoo_pre_restore_20261128t021530z_k3f9"
        );
    }
}
