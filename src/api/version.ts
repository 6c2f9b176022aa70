// Versions the REST API publishes.

/**
 * The Patroni version Vigil is wire-compatible with. Published as `patroni.version` in the status
 * JSON and in `patroni_version`: peers (Patroni or Vigil) make compatibility decisions from it.
 */
export const PATRONI_COMPAT_VERSION = '4.1.4';

/** Vigil's own version (keep in step with package.json). Published as `vigil.version`. */
export const VIGIL_VERSION = '0.1.0';
