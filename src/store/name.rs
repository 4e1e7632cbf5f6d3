//! Topic names, validated like Kafka's so no name can leave the data
//! directory, and partition directory names `<topic>-<partition>`.

use crate::error::{AdminError, Error, Result};

/// Longest topic name (Kafka's limit: a partition directory name must fit
/// in 255 bytes with room for `-<partition>`).
pub const TOPIC_NAME_MAX: usize = 249;

/// Checks `name` is 1 to 249 characters of `[A-Za-z0-9._-]` and not `.` or
/// `..`.
///
/// # Errors
/// [`crate::AdminError::InvalidTopicName`] saying why.
///
/// # Examples
///
/// ```
/// assert!(annals::validate_topic_name("orders.v2_eu-west").is_ok());
/// assert!(annals::validate_topic_name("../etc").is_err());
/// ```
pub fn validate_topic_name(name: &str) -> Result<()> {
    let invalid = |reason| Err(Error::Admin(AdminError::InvalidTopicName { topic: name.to_owned(), reason }));
    if name.is_empty() {
        return invalid("empty");
    }
    if name.len() > TOPIC_NAME_MAX {
        return invalid("longer than 249 characters");
    }
    if name == "." || name == ".." {
        return invalid("'.' and '..' are not topic names");
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) {
        return invalid("only ASCII letters, digits, '.', '_' and '-' are allowed");
    }
    Ok(())
}

/// `<topic>-<partition>`, Kafka's partition directory name.
pub fn partition_dir_name(topic: &str, partition: u32) -> String {
    format!("{topic}-{partition}")
}

/// Splits a partition directory name into topic and partition, if it is one.
pub fn parse_partition_dir(name: &str) -> Option<(&str, u32)> {
    let (topic, partition) = name.rsplit_once('-')?;
    if partition.is_empty() || !partition.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    validate_topic_name(topic).ok()?;
    Some((topic, partition.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_could_escape_or_collide_are_refused() {
        for bad in ["", ".", "..", "a/b", "../x", "a\\b", "a b", "é", "a\0"] {
            assert!(validate_topic_name(bad).is_err(), "{bad:?}");
        }
        assert!(validate_topic_name(&"x".repeat(249)).is_ok());
        assert!(validate_topic_name(&"x".repeat(250)).is_err());
        for good in ["a", "...", "a..b", "orders-0", "_internal"] {
            assert!(validate_topic_name(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn partition_dirs_roundtrip_even_with_dashes_in_topics() {
        assert_eq!(parse_partition_dir(&partition_dir_name("a-0", 7)), Some(("a-0", 7)));
        assert_eq!(parse_partition_dir("orders-12"), Some(("orders", 12)));
        for not in ["orders", "orders-", "orders-x", "-3", "topics", ".lock"] {
            assert_eq!(parse_partition_dir(not), None, "{not}");
        }
    }
}
