//! The on-disk store-and-forward queue (being written).
