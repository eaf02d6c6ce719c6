//! The `queue` fields of a model file, as written. [`validate`](super::validate) turns
//! them into a [`QueueDef`](super::QueueDef).

use crate::distributions::DistributionSpec;
use crate::model::spec::KindFields;
use crate::time::DurationSpec;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A message queue: a producer's call is answered once its message is enqueued; the queue
/// pushes messages to the workers of its consumer service, at least once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageQueueSpec {
    /// The service whose instances process the messages.
    pub consumers: String,
    /// Time to enqueue a message, after which the producer is answered (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enqueue_time: Option<DistributionSpec>,
    /// Most messages waiting to be delivered (default: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_depth: Option<u32>,
    /// What a full queue does with a new message: "refuse" it (the producer's call fails
    /// with queue_full) or "drop_oldest" waiting message (default "refuse"; needs
    /// max_depth).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when_full: Option<WhenFullSpec>,
    /// A delivery not acknowledged within this is delivered again (default "30s").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility_timeout: Option<DurationSpec>,
    /// Deliveries of a message before it goes to the dead-letter queue (default: no
    /// limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_deliveries: Option<u32>,
    /// A failed delivery waits this long before its message is visible again (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_backoff: Option<DurationSpec>,
    /// Messages handed out at once to each consumer instance (default: its workers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_flight_per_consumer: Option<u32>,
    /// Another `queue` that receives the dead-lettered messages (default: none, they are
    /// only counted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter: Option<String>,
    /// Which waiting message is delivered next: "fifo" (the oldest) or "priority" (the
    /// oldest of the most urgent level present, levels by request class in `priorities`)
    /// (default "fifo").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<OrderSpec>,
    /// With "order": "priority": request class -> level 0-255, lower delivered first; a
    /// class not listed has level 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priorities: Option<indexmap::IndexMap<String, u8>>,
    /// Consumers take messages in batches: a free worker takes up to `max` waiting
    /// messages at once, waiting up to `max_wait` for more, and holds them for `fixed` +
    /// `per_message` × their number (default: one message at a time, with the consumers'
    /// own handler).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<BatchSpec>,
}

/// How a queue's consumers take messages in batches (the words of a database's
/// `group_commit`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchSpec {
    /// Most messages in a batch (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u32>,
    /// Longest a free worker waits for a batch to fill, from when it could take the first
    /// message (default 0: it takes what is waiting at once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_wait: Option<DurationSpec>,
    /// Time a batch takes whatever its size, drawn once per batch (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed: Option<DistributionSpec>,
    /// Time each message of a batch adds, drawn once per message (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_message: Option<DistributionSpec>,
}

/// The order in which a queue delivers its waiting messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderSpec {
    /// First in, first out.
    Fifo,
    /// By the priority level of the message's request class, first in first out within a
    /// level.
    Priority,
}

/// What a full queue does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WhenFullSpec {
    /// The new message is refused: the producer's call fails (queue_full).
    Refuse,
    /// The oldest waiting message is dropped to make room.
    DropOldest,
}

impl KindFields for MessageQueueSpec {
    fn instances(&self, replicas: Option<u32>) -> Result<u32, String> {
        match replicas.unwrap_or(1) {
            1 => Ok(1),
            r => Err(format!(
                "a queue has one instance (a broker; partitions are not built yet), got {r}"
            )),
        }
    }
}
