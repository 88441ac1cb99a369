/**
 * The mocha globals @web/test-runner provides in the browser. The project has no @types/mocha (adding it as a
 * devDependency would make this file unnecessary); these are the only ones the widget tests use.
 */
type MochaDone = () => void | Promise<void>;

declare function describe(title: string, suite: () => void): void;
declare function it(title: string, test: MochaDone): void;
declare function beforeEach(hook: MochaDone): void;
declare function afterEach(hook: MochaDone): void;
