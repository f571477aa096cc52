/** Set by the build from package.json; `dev` when run from source. */
declare const __VERSION__: string | undefined;
export const VERSION: string = typeof __VERSION__ === 'string' ? __VERSION__ : 'dev';
