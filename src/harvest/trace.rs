//! The engine's log events: `tracing` events with feature `tracing`, nothing without it.
//!
//! The macros take a format string only, so that without the feature the arguments are still
//! type-checked (inside an `if false`) and no variable becomes unused.

macro_rules! log_event {
    ($level:ident, $($arg:tt)+) => {{
        #[cfg(feature = "tracing")]
        ::tracing::$level!(target: "modbus_stack::harvest", $($arg)+);
        #[cfg(not(feature = "tracing"))]
        if false {
            let _ = ::std::format!($($arg)+);
        }
    }};
}

macro_rules! log_debug {
    ($($arg:tt)+) => { log_event!(debug, $($arg)+) };
}

macro_rules! log_info {
    ($($arg:tt)+) => { log_event!(info, $($arg)+) };
}

macro_rules! log_warn {
    ($($arg:tt)+) => { log_event!(warn, $($arg)+) };
}
