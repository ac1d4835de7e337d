//! Sparkplug B 3.0 payloads and session rules (being written).
