//! Topics and the store: the public API users embed.

mod layout;
mod maintenance;
mod metadata;
mod name;
mod offsets;
mod partitioner;
mod reader;
mod repair;
#[expect(clippy::module_inception, reason = "the store module's main type lives in store.rs")]
mod store;
mod topic;

pub use metadata::TopicConfig;
pub use name::{partition_dir_name, validate_topic_name, TOPIC_NAME_MAX};
pub use offsets::{ConsumerOffsets, GROUP_NAME_MAX, OFFSETS_TOPIC};
pub use partitioner::{murmur2, partition_for_key};
pub use reader::{ReadBound, Reader, StartAt, DEFAULT_FETCH_BYTES};
pub use store::{PartitionDescription, Store, StoreConfig, TopicDescription};
pub use topic::{Partition, PartitionAppend, Topic};
