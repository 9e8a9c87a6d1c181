export {
  defaultAudience,
  ensureLocalKeys,
  jwksFile,
  localAlgorithm,
  localIssuer,
  privateKeyFile,
  readJwks,
  readPrivateKey,
  serviceSigner,
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
  type Verifier,
  type VerifierOptions,
} from "./tokens.ts";
