export * from './api.ts';
export * from './layer.ts';
export * from './protocol.ts';
export * from './rooms.ts';
export * from './schema.ts';
export * from './agreement.ts';
export * from './offsets.ts';
export * from './nesting.ts';
