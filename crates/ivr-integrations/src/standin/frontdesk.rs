//! Stand-in Frontdesk server (not written yet).
