// The etcd launcher is product code (vigil demo uses it); tests import it from here.
export { startEtcd, freePort, type EtcdServer } from '../../src/local/etcd.ts';
