//! primary: correct on every shipped scenario, and every planted bug caught.
