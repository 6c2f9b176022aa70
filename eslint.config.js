import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  {
    // The decision core is pure: no IO, no clock, no adapters.
    files: ['src/core/**/*.ts'],
    ignores: ['src/core/**/*.test.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [
          { group: ['node:*', 'fs', 'http', 'child_process', 'net'], message: 'src/core is pure: no IO.' },
          { group: ['**/dcs/**', '**/postgres/**', '**/agent/**', '**/api/**', '**/cli/**'], message: 'src/core must not depend on adapters.' },
        ],
      }],
      'no-restricted-properties': ['error',
        { object: 'Date', property: 'now', message: 'Time is an input of the core.' },
        { object: 'Math', property: 'random', message: 'Randomness is an input of the core.' },
      ],
    },
  },
);
