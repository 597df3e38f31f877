// Hardhat Network as `npx hardhat node` serves it: chain id 31337, its
// twenty funded, unlocked accounts. Nothing here compiles (compile.mjs
// uses solc from npm, so no compiler is downloaded).
module.exports = { networks: { hardhat: { chainId: 31337 } } };
