//! Topics and the store: the public API users embed.

mod layout;
mod maintenance;
mod metadata;
mod metrics;
mod name;
mod offsets;
mod parallel;
mod partitioner;
mod reader;
mod repair;
#[expect(clippy::module_inception, reason = "the store module's main type lives in store.rs")]
mod store;
mod topic;

pub use crate::log::ReadBound;
pub use metadata::TopicConfig;
pub use metrics::StoreMetrics;
pub use name::{partition_dir_name, validate_topic_name, TOPIC_NAME_MAX};
pub use offsets::{CommittedOffset, ConsumerOffsets, OffsetCommit, GROUP_NAME_MAX, OFFSETS_TOPIC};
pub use partitioner::{murmur2, partition_for_key};
pub use reader::{Reader, StartAt, DEFAULT_FETCH_BYTES};
pub use store::{
    default_max_open_files, PartitionDescription, Store, StoreConfig, TopicDescription, MIN_OPEN_FILES,
};
pub use topic::{Partition, PartitionAppend, Topic};
