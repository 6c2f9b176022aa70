// TLS material of the etcd3 client (etcd3.cacert, cert, key, key_password), read and checked once
// when the client is created so that a missing file, a wrong passphrase or a key that does not
// belong to its certificate stops the start-up with the setting's name, instead of failing every
// request later. Also: the wording of TLS failures seen on a connection (tlsFailure).

import { readFileSync } from 'node:fs';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { createSecureContext, type SecureContext } from 'node:tls';

/** File paths as written in the etcd3 section. */
export interface Etcd3TlsFiles {
  /** etcd3.cacert: PEM file with the CA certificate(s) etcd's server certificate must chain to. */
  cacert?: string | undefined;
  /** etcd3.cert: PEM file with the client certificate (it may also hold the private key). */
  cert?: string | undefined;
  /** etcd3.key: PEM file with the client certificate's private key. */
  key?: string | undefined;
  /** etcd3.key_password: passphrase of an encrypted private key. */
  keyPassword?: string | undefined;
}

/** A setting of the etcd3 section that cannot be used; `setting` is its name, e.g. etcd3.cacert. */
export class Etcd3SettingError extends Error {
  readonly setting: string;
  constructor(setting: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'Etcd3SettingError';
    this.setting = setting;
  }
}

/** What the transport needs: one secure context, and which settings were given (for hints). */
export interface Etcd3Tls {
  context: SecureContext;
  hasCa: boolean;
  hasClientCert: boolean;
}

function reason(err: unknown): string {
  if (err instanceof Error) {
    const r = (err as { reason?: unknown }).reason;
    return typeof r === 'string' && r !== '' ? r : err.message;
  }
  return String(err);
}

function readPem(setting: string, file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new Etcd3SettingError(setting, `${setting} ${JSON.stringify(file)} cannot be read: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  return text;
}

const KEY_BLOCK = /-----BEGIN ([A-Z ]*)PRIVATE KEY-----[\s\S]*?-----END \1PRIVATE KEY-----/;
const CERT_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/** Every certificate of a PEM text, parsed; throws naming the setting when there is none or one is broken. */
function certificates(setting: string, file: string, pem: string): X509Certificate[] {
  const blocks = pem.match(CERT_BLOCK) ?? [];
  if (blocks.length === 0) throw new Etcd3SettingError(setting, `${setting} ${JSON.stringify(file)} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  return blocks.map((b, i) => {
    try {
      return new X509Certificate(b);
    } catch (err) {
      throw new Etcd3SettingError(setting, `${setting} ${JSON.stringify(file)}: certificate ${i + 1} cannot be parsed: ${reason(err)}`, { cause: err });
    }
  });
}

/**
 * Read and check the files; undefined when none is set (the system's CAs, no client certificate).
 * Synchronous on purpose: it runs once, when the client is created. Throws Etcd3SettingError.
 */
export function loadEtcd3Tls(files: Etcd3TlsFiles): Etcd3Tls | undefined {
  if (files.cacert === undefined && files.cert === undefined && files.key === undefined) return undefined;
  const options: { ca?: string; cert?: string; key?: string; passphrase?: string } = {};
  if (files.cacert !== undefined) {
    options.ca = readPem('etcd3.cacert', files.cacert);
    certificates('etcd3.cacert', files.cacert, options.ca);
  }
  if (files.key !== undefined && files.cert === undefined) {
    throw new Etcd3SettingError('etcd3.key', 'etcd3.key is set without etcd3.cert');
  }
  if (files.cert !== undefined) {
    const cert = readPem('etcd3.cert', files.cert);
    certificates('etcd3.cert', files.cert, cert);
    // Like Patroni, the certificate file may hold the key as well when etcd3.key is not set.
    let keySetting = 'etcd3.key';
    let keyFile = files.key;
    let key: string;
    if (files.key !== undefined) {
      key = readPem('etcd3.key', files.key);
    } else if (KEY_BLOCK.test(cert)) {
      key = cert;
      keySetting = 'etcd3.cert';
      keyFile = files.cert;
    } else {
      throw new Etcd3SettingError('etcd3.key', `etcd3.cert ${JSON.stringify(files.cert)} holds no private key and etcd3.key is not set`);
    }
    // Only the key block: the file may hold certificates too.
    key = KEY_BLOCK.exec(key)?.[0] ?? key;
    if (files.keyPassword === undefined && /ENCRYPTED PRIVATE KEY|Proc-Type: 4,ENCRYPTED/.test(key)) {
      throw new Etcd3SettingError(keySetting, `${keySetting} ${JSON.stringify(keyFile)}: the key is encrypted and etcd3.key_password is not set`);
    }
    try {
      createPrivateKey(files.keyPassword !== undefined ? { key, passphrase: files.keyPassword } : { key });
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      const why = code === 'ERR_MISSING_PASSPHRASE'
        ? 'the key is encrypted and etcd3.key_password is not set'
        : code === 'ERR_OSSL_BAD_DECRYPT'
          ? `cannot decrypt the key: ${files.keyPassword === undefined ? 'etcd3.key_password is not set' : 'wrong etcd3.key_password'}`
          : `not a usable PEM private key: ${reason(err)}`;
      throw new Etcd3SettingError(keySetting, `${keySetting} ${JSON.stringify(keyFile)}: ${why}`, { cause: err });
    }
    try {
      createSecureContext({ cert, key, ...(files.keyPassword !== undefined ? { passphrase: files.keyPassword } : {}) });
    } catch (err) {
      const mismatch = (err as { code?: unknown }).code === 'ERR_OSSL_X509_KEY_VALUES_MISMATCH';
      throw new Etcd3SettingError(
        keySetting,
        mismatch
          ? `${keySetting} ${JSON.stringify(keyFile)} is not the key of the certificate in etcd3.cert ${JSON.stringify(files.cert)}`
          : `etcd3.cert ${JSON.stringify(files.cert)} / ${keySetting} ${JSON.stringify(keyFile)}: ${reason(err)}`,
        { cause: err },
      );
    }
    options.cert = cert;
    options.key = key;
    if (files.keyPassword !== undefined) options.passphrase = files.keyPassword;
  }
  let context: SecureContext;
  try {
    context = createSecureContext(options);
  } catch (err) {
    throw new Etcd3SettingError('etcd3.cacert', `etcd3 TLS settings cannot be used: ${reason(err)}`, { cause: err });
  }
  return { context, hasCa: options.ca !== undefined, hasClientCert: options.cert !== undefined };
}

/** Certificate verification failures on our side (Node/OpenSSL X509 codes). */
const UNTRUSTED = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'CERT_UNTRUSTED', 'CERT_REJECTED', 'CERT_SIGNATURE_FAILURE', 'INVALID_CA',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE', 'CERT_CHAIN_TOO_LONG', 'PATH_LENGTH_EXCEEDED', 'INVALID_PURPOSE',
]);
const OTHER_X509 = new Set([
  'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'CERT_REVOKED', 'HOSTNAME_MISMATCH', 'UNABLE_TO_GET_CRL', 'CRL_HAS_EXPIRED',
  'CRL_NOT_YET_VALID', 'CRL_SIGNATURE_FAILURE', 'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY', 'ERROR_IN_CERT_NOT_BEFORE_FIELD',
  'ERROR_IN_CERT_NOT_AFTER_FIELD', 'OUT_OF_MEM',
]);

/**
 * When `err` (from a connection to `host`) is a TLS failure: a message naming the problem and,
 * where one is likely, the setting to look at. undefined for any other error.
 */
export function tlsFailure(err: unknown, host: string, tls: Pick<Etcd3Tls, 'hasCa' | 'hasClientCert'> | undefined): string | undefined {
  if (!(err instanceof Error)) return undefined;
  const raw = (err as { code?: unknown }).code;
  const code = typeof raw === 'string' ? raw : '';
  const isTls = UNTRUSTED.has(code) || OTHER_X509.has(code) || code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_')
    || (err as { library?: unknown }).library === 'SSL routines';
  if (!isTls) return undefined;
  let hint = '';
  if (UNTRUSTED.has(code)) {
    hint = tls?.hasCa ? ' (the server certificate is not signed by a CA in etcd3.cacert)' : ' (etcd3.cacert not set?)';
  } else if (code === 'ERR_TLS_CERT_ALTNAME_INVALID' || code === 'HOSTNAME_MISMATCH') {
    hint = ' (the host in etcd3.hosts must be a subjectAltName of the server certificate)';
  } else if (/CERTIFICATE_REQUIRED|BAD_CERTIFICATE|UNKNOWN_CA|CERTIFICATE_UNKNOWN|HANDSHAKE_FAILURE|ACCESS_DENIED|UNSUPPORTED_CERTIFICATE/.test(code)) {
    hint = tls?.hasClientCert ? ' (etcd rejected the client certificate in etcd3.cert)' : ' (etcd asks for a client certificate: set etcd3.cert and etcd3.key)';
  } else if (/WRONG_VERSION_NUMBER|PACKET_LENGTH_TOO_LONG|RECORD_LAYER_FAILURE/.test(code)) {
    hint = ' (does etcd serve plain HTTP there? check etcd3.protocol)';
  }
  return `etcd ${host}: TLS: ${reason(err)}${hint}`;
}
