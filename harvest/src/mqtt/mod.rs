//! Publishing to an MQTT broker: plain JSON topics or Sparkplug B, every sample through an
//! on-disk store-and-forward queue that it leaves only once the broker has acknowledged it.

pub mod queue;
pub mod record;
pub mod sparkplug;
