//! The end-to-end test against a real sshd (written next).
