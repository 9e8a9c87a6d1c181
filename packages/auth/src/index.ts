export {
  defaultAudience,
  ensureLocalKeys,
  jwksFile,
  localAlgorithm,
  localIssuer,
  privateKeyFile,
  readJwks,
  readPrivateKey,
  signInSigner,
} from "./local-keys.ts";
export {
  type Claims,
  createServiceCredentials,
  createSigner,
  createVerifier,
  type Identity,
  InvalidTokenError,
  KeysUnavailableError,
  type Signer,
  serviceSigner,
  type Verifier,
  type VerifierOptions,
} from "./tokens.ts";
