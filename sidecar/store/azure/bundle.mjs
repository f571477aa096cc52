// What bundling this kind's SDK needs (scripts/build.mjs reads every store/<kind>/bundle.mjs, so that a kind's needs
// stay in its folder). The bundle is CommonJS: the Azure SDK's CommonJS builds, since its ES module builds read
// `import.meta.url` when they load (storage-common's crc64), which a CommonJS bundle leaves undefined.
export const alias = {
  '@azure/storage-blob': './node_modules/@azure/storage-blob/dist/commonjs/index.js',
  '@azure/identity': './node_modules/@azure/identity/dist/commonjs/index.js',
};
