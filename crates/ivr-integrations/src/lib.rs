//! Integrations: durable callback queue (SQL), SMTP mail outbox, Frontdesk booking client, Puzzel callback API and transfer context.
//!
//! Not implemented yet: see the open issues.
