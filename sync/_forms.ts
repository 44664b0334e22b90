// Internal: the forms of the ids every sync object carries, in one place.

/** A device id: `[a-z0-9_-]{1,64}`. */
export const DEVICE_FORM = /^[a-z0-9_-]{1,64}$/;

/** A chain value: 64 lower-case hex digits (SHA-256). */
export const CHAIN_FORM = /^[0-9a-f]{64}$/;
