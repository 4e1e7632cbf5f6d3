//! Durable acknowledgements: on a topic whose high watermark follows the
//! durable offset (`write.caching=false`, the default under
//! `--acks-all-durable`), acks=-1 is answered once the batches are fsynced,
//! and consumers read only below the durable offset. Kafka on one node
//! answers acks=-1 from the page cache (it counts on replicas); Redpanda
//! fsyncs first. Records that no acks=-1 produce fsyncs (acks=1, acks=0)
//! are fsynced within `max_flush_delay` by [`flush_every`], so consumers
//! see them without waiting for a roll.

use std::sync::Arc;

use annals::Partition;

use crate::Shared;

/// Whether acks=-1 on `partition` waits for an fsync.
pub(crate) fn acks_all_durable(partition: &Partition) -> bool {
    partition.config().durable_high_watermark
}

/// The flusher's fsync of a partition whose durable offset is behind its
/// log end (an acks=-1 produce waits through `Completion::Durable`
/// instead, which gathers with concurrent producers).
pub(crate) fn sync(partition: &Partition) -> annals::Result<()> {
    if partition.durable_offset() >= partition.log_end_offset() {
        return Ok(());
    }
    partition.sync()
}

/// Every `max_flush_delay`, fsyncs the partitions whose high watermark
/// waits for their durable offset to pass records still unsynced.
pub(crate) async fn flush_every(shared: Arc<Shared>) {
    let every = shared.config.max_flush_delay;
    loop {
        tokio::time::sleep(every).await;
        let shared = shared.clone();
        let flushed = tokio::task::spawn_blocking(move || flush_behind(&shared)).await;
        if let Err(e) = flushed {
            tracing::error!(error = %e, "the durable-offset flusher panicked");
        }
    }
}

fn flush_behind(shared: &Shared) {
    for name in shared.store.list_topics() {
        let Ok(topic) = shared.store.topic(&name) else { continue };
        if !topic.config().log.durable_high_watermark {
            continue;
        }
        for partition in topic.partitions() {
            if partition.poisoned().is_some() {
                continue; // offline: its error is what fetches answer
            }
            if let Err(e) = sync(&partition) {
                tracing::warn!(topic = %name, partition = partition.id(), error = %e, "background fsync failed");
            }
        }
    }
}
