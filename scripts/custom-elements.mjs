#!/usr/bin/env node
/**
 * custom-elements.json (Custom Elements Manifest, schema 2.1.0) for `<kasu-checkout>`, generated from the widget's
 * source with the TypeScript compiler API (the standard generator, @custom-elements-manifest/analyzer, is not a
 * dependency):
 *
 *   - attributes: the `static properties` entries that have an attribute (not `state: true`, not `attribute: false`),
 *     described by the class's `@attr` tags or the field's JSDoc, with the default the constructor assigns;
 *   - methods: public methods of the class (not private/protected, not `#` or `_`, not Lit/DOM lifecycle overrides);
 *   - events: the event classes of widget/events.ts (`static readonly eventName`), with their detail's fields;
 *   - CSS custom properties: every `--kasu-*` in widget/**\/*.ts, with the `var()` fallback as default and the
 *     class's `@cssprop` tag (or a comment on the same line) as description;
 *   - CSS parts: every `part="…"` in widget/**\/*.ts, described by the class's `@csspart` tags.
 *
 * The output is sorted and stable, so `--check` can prove in CI that the committed file is current.
 *
 *   node scripts/custom-elements.mjs                 write custom-elements.json
 *   node scripts/custom-elements.mjs --check         exit 1 when custom-elements.json differs from what would be written
 *   node scripts/custom-elements.mjs --docs FILE     also fill FILE's marked tables (`<!-- custom-elements:events -->`
 *                                                    … `<!-- /custom-elements:events -->`; attributes, methods, events,
 *                                                    parts, properties); with --check, exit 1 when they are stale
 *   node scripts/custom-elements.mjs --markdown[=attributes,events,…]   print the tables
 *   node scripts/custom-elements.mjs --stdout        print the manifest instead of writing it
 *
 * Consistency problems (a documented part that no template has, an event nobody fires…) are warnings on stderr.
 */
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const OUTPUT = join(ROOT, 'custom-elements.json');
const ENTRY = 'widget/index.ts';
const ELEMENT_FILE = 'widget/kasu-checkout.ts';
const ELEMENT_CLASS = 'KasuCheckout';
const EVENTS_FILE = 'widget/events.ts';
/** The module a page imports (the built ES bundle): every declaration below is exported from it. */
const MODULE_PATH = 'dist/widget/kasu-checkout.js';
const SCHEMA_VERSION = '2.1.0';

/** Public by TypeScript's rules, but the element's lifecycle rather than its API. */
const LIFECYCLE = new Set([
  'adoptedCallback', 'attributeChangedCallback', 'connectedCallback', 'createRenderRoot', 'disconnectedCallback',
  'firstUpdated', 'getUpdateComplete', 'performUpdate', 'render', 'requestUpdate', 'scheduleUpdate', 'shouldUpdate',
  'update', 'updated', 'willUpdate',
]);

const warnings = [];
const warn = (message) => warnings.push(message);

// ---------- reading the source ----------

function program() {
  const configPath = join(ROOT, 'tsconfig.json');
  const config = ts.readConfigFile(configPath, ts.sys.readFile);
  const parsed = ts.parseJsonConfigFileContent(config.config ?? {}, ts.sys, ROOT);
  return ts.createProgram({ rootNames: [join(ROOT, ENTRY)], options: { ...parsed.options, noEmit: true } });
}

/** widget/**\/*.ts, as sorted repository-relative paths with forward slashes. */
function widgetFiles() {
  const files = [];
  const walk = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) files.push(toPosix(relative(ROOT, path)));
    }
  };
  walk(join(ROOT, 'widget'));
  return files.sort();
}

const toPosix = (path) => path.split(sep).join('/');

/** Whitespace of source text collapsed (types written over several lines read as one). */
const oneLine = (text) => text.replace(/\s+/g, ' ').trim();

/** JSDoc text: lines joined, blank lines kept as paragraph breaks. */
function prose(text) {
  return (text ?? '')
    .split(/\n\s*\n/)
    .map((paragraph) => oneLine(paragraph))
    .filter(Boolean)
    .join('\n\n');
}

function jsDocOf(node) {
  const docs = (node.jsDoc ?? []).filter((doc) => ts.isJSDoc(doc));
  const last = docs.at(-1);
  return last ? prose(ts.getTextOfJSDocComment(last.comment)) : '';
}

/** `@tag name - text` tags of a node, in source order. */
function tagsOf(node, tagName) {
  return ts
    .getJSDocTags(node)
    .filter((tag) => tag.tagName.text === tagName)
    .map((tag) => {
      const text = prose(ts.getTextOfJSDocComment(tag.comment));
      const match = /^(\S+)\s*(?:-\s*)?([\s\S]*)$/.exec(text);
      return { name: match?.[1] ?? '', text: match?.[2]?.trim() ?? '' };
    });
}

function hasModifier(node, kind) {
  return (ts.getModifiers?.(node) ?? node.modifiers ?? []).some((modifier) => modifier.kind === kind);
}

function memberName(member) {
  const name = member.name;
  if (!name) return null;
  if (ts.isPrivateIdentifier(name)) return null;
  if (ts.isIdentifier(name) || ts.isStringLiteral(name)) return name.text;
  return null;
}

function isPublicMember(member) {
  const name = memberName(member);
  if (!name || name.startsWith('_')) return false;
  return !hasModifier(member, ts.SyntaxKind.PrivateKeyword) && !hasModifier(member, ts.SyntaxKind.ProtectedKeyword);
}

function findClass(sourceFile, name) {
  let found = null;
  sourceFile.forEachChild((node) => {
    if (ts.isClassDeclaration(node) && node.name?.text === name) found = node;
  });
  return found;
}

/** The value of a constant string expression ('a' + 'b', `c`, or a const of this file). */
function constantString(expression, sourceFile) {
  if (!expression) return null;
  if (ts.isStringLiteral(expression) || ts.isNoSubstitutionTemplateLiteral(expression)) return expression.text;
  if (ts.isParenthesizedExpression(expression)) return constantString(expression.expression, sourceFile);
  if (ts.isBinaryExpression(expression) && expression.operatorToken.kind === ts.SyntaxKind.PlusToken) {
    const left = constantString(expression.left, sourceFile);
    const right = constantString(expression.right, sourceFile);
    return left === null || right === null ? null : left + right;
  }
  if (ts.isIdentifier(expression)) {
    let value = null;
    const visit = (node) => {
      if (value !== null) return;
      if (ts.isVariableDeclaration(node) && ts.isIdentifier(node.name) && node.name.text === expression.text) {
        value = constantString(node.initializer, sourceFile);
      } else node.forEachChild(visit);
    };
    sourceFile.forEachChild(visit);
    return value;
  }
  return null;
}

/**
 * How a type reads in the docs: a union of up to 8 literals spelt out ("paid" | "failed"…); a longer one by the
 * name it was written with (`ErrorCode`); anything else as the checker prints it.
 */
function typeText(checker, type, written = null) {
  const literal = (member) =>
    member.isLiteral() || member.flags & (ts.TypeFlags.Null | ts.TypeFlags.Undefined | ts.TypeFlags.BooleanLiteral);
  if (type.isUnion() && type.types.every(literal)) {
    if (type.types.length <= 8) return type.types.map((member) => checker.typeToString(member)).join(' | ');
    if (written) return written;
  }
  return checker.typeToString(type, undefined, ts.TypeFormatFlags.NoTruncation);
}

// ---------- the element ----------

function describeElement(checker, sourceFile) {
  const cls = findClass(sourceFile, ELEMENT_CLASS);
  if (!cls) throw new Error(`${ELEMENT_FILE}: class ${ELEMENT_CLASS} not found`);

  const superclass = cls.heritageClauses?.find((clause) => clause.token === ts.SyntaxKind.ExtendsKeyword)?.types[0];
  const superName = superclass ? superclass.expression.getText(sourceFile) : null;

  const attrTags = new Map(tagsOf(cls, 'attr').map((tag) => [tag.name, tag.text]));
  const firesTags = new Map(tagsOf(cls, 'fires').map((tag) => [tag.name, tag.text]));
  const partTags = new Map(tagsOf(cls, 'csspart').map((tag) => [tag.name, tag.text]));
  const propTags = new Map(tagsOf(cls, 'cssprop').map((tag) => [tag.name, tag.text]));

  // Defaults: `this.x = …` in the constructor, or the field's initializer.
  const defaults = new Map();
  for (const member of cls.members) {
    if (ts.isPropertyDeclaration(member) && member.initializer && memberName(member)) {
      defaults.set(memberName(member), member.initializer);
    }
    if (ts.isConstructorDeclaration(member) && member.body) {
      for (const statement of member.body.statements) {
        if (!ts.isExpressionStatement(statement)) continue;
        const expression = statement.expression;
        if (!ts.isBinaryExpression(expression) || expression.operatorToken.kind !== ts.SyntaxKind.EqualsToken) continue;
        const left = expression.left;
        if (ts.isPropertyAccessExpression(left) && left.expression.kind === ts.SyntaxKind.ThisKeyword && ts.isIdentifier(left.name)) {
          defaults.set(left.name.text, expression.right);
        }
      }
    }
  }

  const fieldDeclarations = new Map();
  for (const member of cls.members) {
    if ((ts.isPropertyDeclaration(member) || ts.isGetAccessorDeclaration(member)) && !hasModifier(member, ts.SyntaxKind.StaticKeyword)) {
      const name = memberName(member);
      if (name) fieldDeclarations.set(name, member);
    }
  }

  // Reactive properties with an attribute.
  const attributes = [];
  const fields = [];
  const properties = cls.members.find(
    (member) => ts.isPropertyDeclaration(member) && hasModifier(member, ts.SyntaxKind.StaticKeyword) && memberName(member) === 'properties',
  );
  const reactive = properties?.initializer && ts.isObjectLiteralExpression(properties.initializer) ? properties.initializer.properties : [];
  for (const entry of reactive) {
    if (!ts.isPropertyAssignment(entry) || !ts.isObjectLiteralExpression(entry.initializer)) continue;
    const name = memberName(entry);
    if (!name) continue;
    const options = new Map(
      entry.initializer.properties.filter(ts.isPropertyAssignment).map((option) => [memberName(option), option.initializer]),
    );
    if (options.get('state')?.kind === ts.SyntaxKind.TrueKeyword) continue;
    const attributeOption = options.get('attribute');
    if (attributeOption?.kind === ts.SyntaxKind.FalseKeyword) continue;
    const attribute = attributeOption && ts.isStringLiteral(attributeOption) ? attributeOption.text : name.toLowerCase();
    const reflects = options.get('reflect')?.kind === ts.SyntaxKind.TrueKeyword;

    const declaration = fieldDeclarations.get(name);
    const litType = options.get('type')?.getText(sourceFile);
    const declaredType = declaration?.type ? oneLine(declaration.type.getText(sourceFile)) : null;
    const type = declaredType ?? { String: 'string', Number: 'number', Boolean: 'boolean', Array: 'unknown[]', Object: 'object' }[litType] ?? null;
    const fieldDoc = (declaration && jsDocOf(declaration)) || jsDocOf(entry);
    const attributeDoc = attrTags.get(attribute) ?? fieldDoc;
    if (!attrTags.has(attribute)) warn(`attribute "${attribute}" has no @attr tag on ${ELEMENT_CLASS}`);
    if (!attributeDoc) warn(`attribute "${attribute}" is not documented`);

    const initializer = defaults.get(name);
    const attributeDefault = initializer && (ts.isStringLiteral(initializer) || ts.isNoSubstitutionTemplateLiteral(initializer))
      ? initializer.text
      : initializer ? oneLine(initializer.getText(sourceFile)) : undefined;

    attributes.push(clean({
      name: attribute,
      description: attributeDoc,
      type: type ? { text: type } : undefined,
      default: attributeDefault === undefined ? undefined : JSON.stringify(attributeDefault),
      fieldName: name,
    }));
    fields.push(clean({
      kind: 'field',
      name,
      description: fieldDoc || attributeDoc,
      privacy: 'public',
      type: type ? { text: type } : undefined,
      default: initializer ? oneLine(initializer.getText(sourceFile)) : undefined,
      attribute,
      reflects: reflects || undefined,
    }));
  }
  // Documented attributes that are no reactive property (a global attribute the element reads, such as `id`).
  for (const [tag, text] of attrTags) {
    if (!attributes.some((attribute) => attribute.name === tag)) attributes.push(clean({ name: tag, description: text }));
  }

  // Public methods.
  const methods = [];
  for (const member of cls.members) {
    if (!ts.isMethodDeclaration(member) || !isPublicMember(member)) continue;
    if (hasModifier(member, ts.SyntaxKind.StaticKeyword) || hasModifier(member, ts.SyntaxKind.OverrideKeyword)) continue;
    const name = memberName(member);
    if (LIFECYCLE.has(name)) continue;
    const signature = checker.getSignatureFromDeclaration(member);
    const paramTags = ts.getJSDocTags(member).filter(ts.isJSDocParameterTag);
    const returnTag = ts.getJSDocTags(member).find((tag) => tag.tagName.text === 'returns' || tag.tagName.text === 'return');
    const parameters = member.parameters.map((parameter, index) => {
      const tag = ts.getJSDocParameterTags(parameter)[0] ?? paramTags[index];
      const paramName = ts.isIdentifier(parameter.name)
        ? parameter.name.text
        : tag?.name?.getText(sourceFile) ?? oneLine(parameter.name.getText(sourceFile));
      const type = parameter.type
        ? oneLine(parameter.type.getText(sourceFile))
        : typeText(checker, checker.getTypeAtLocation(parameter));
      return clean({
        name: paramName,
        description: tag ? prose(ts.getTextOfJSDocComment(tag.comment)).replace(/^-\s*/, '') : undefined,
        type: { text: type },
        optional: parameter.questionToken || parameter.initializer ? true : undefined,
        default: parameter.initializer ? oneLine(parameter.initializer.getText(sourceFile)) : undefined,
        rest: parameter.dotDotDotToken ? true : undefined,
      });
    });
    const returnType = member.type
      ? oneLine(member.type.getText(sourceFile))
      : signature ? typeText(checker, checker.getReturnTypeOfSignature(signature)) : 'void';
    const description = jsDocOf(member);
    if (!description) warn(`public method ${name}() has no JSDoc`);
    methods.push(clean({
      kind: 'method',
      name,
      description,
      privacy: 'public',
      parameters: parameters.length ? parameters : undefined,
      return: { type: { text: returnType }, description: returnTag ? prose(ts.getTextOfJSDocComment(returnTag.comment)) : undefined },
    }));
  }

  return { cls, superName, attributes, fields, methods, firesTags, partTags, propTags };
}

// ---------- events ----------

function describeEvents(checker, sourceFile) {
  const events = [];
  sourceFile.forEachChild((node) => {
    if (!ts.isClassDeclaration(node) || !node.name) return;
    const heritage = node.heritageClauses?.find((clause) => clause.token === ts.SyntaxKind.ExtendsKeyword)?.types[0];
    if (!heritage || heritage.expression.getText(sourceFile) !== 'CustomEvent') return;
    const eventNameMember = node.members.find(
      (member) => ts.isPropertyDeclaration(member) && hasModifier(member, ts.SyntaxKind.StaticKeyword) && memberName(member) === 'eventName',
    );
    const eventName = eventNameMember?.initializer && ts.isStringLiteral(eventNameMember.initializer) ? eventNameMember.initializer.text : null;
    if (!eventName) {
      warn(`${EVENTS_FILE}: ${node.name.text} has no static eventName`);
      return;
    }
    const detailNode = heritage.typeArguments?.[0];
    const detailType = detailNode ? checker.getTypeFromTypeNode(detailNode) : null;
    const detail = detailType
      ? checker.getPropertiesOfType(detailType).map((property) => {
          const declaration = property.valueDeclaration ?? property.declarations?.[0];
          const type = checker.getTypeOfSymbolAtLocation(property, declaration ?? detailNode);
          const written = declaration && 'type' in declaration && declaration.type ? oneLine(declaration.type.getText()) : null;
          return clean({
            name: property.name,
            type: typeText(checker, type, written),
            optional: property.flags & ts.SymbolFlags.Optional ? true : undefined,
            description: prose(ts.displayPartsToString(property.getDocumentationComment(checker))) || undefined,
          });
        })
      : [];
    events.push({
      className: node.name.text,
      eventName,
      description: jsDocOf(node),
      detailTypeText: detailNode ? oneLine(detailNode.getText(sourceFile)) : 'unknown',
      detail,
    });
  });
  return events.sort((a, b) => compare(a.eventName, b.eventName));
}

// ---------- CSS: custom properties and parts ----------

/** The fallback of `var(--name, fallback)` starting at `index` (just after the name), parentheses balanced. */
function varFallback(text, index) {
  let i = index;
  while (/\s/.test(text[i] ?? '')) i += 1;
  if (text[i] !== ',') return null;
  let depth = 0;
  let quote = null;
  const start = i + 1;
  for (i = start; i < text.length; i += 1) {
    const char = text[i];
    if (quote) {
      if (char === quote) quote = null;
    } else if (char === '"' || char === "'") quote = char;
    else if (char === '(') depth += 1;
    else if (char === ')') {
      if (depth === 0) return oneLine(text.slice(start, i));
      depth -= 1;
    }
  }
  return null;
}

/** A `// …` or `/* … *\/` comment on the line of `index`, other than the JSDoc's own lines. */
function commentOnLine(text, index) {
  const lineStart = text.lastIndexOf('\n', index) + 1;
  const lineEnd = text.indexOf('\n', index) === -1 ? text.length : text.indexOf('\n', index);
  const line = text.slice(lineStart, lineEnd);
  if (/^\s*(\*|\/\*\*)/.test(line)) return null;
  const block = /\/\*\s*(.*?)\s*\*\//.exec(line);
  if (block?.[1]) return block[1];
  const slashes = /(?:^|\s)\/\/\s*(.*)$/.exec(line);
  return slashes?.[1]?.trim() || null;
}

/**
 * Values the widget gives its private custom properties (`--_kasu-scheme-border: #8b949e;`), by name, each with the
 * `const … = css` block it is in (`dark`): a public property whose fallback is a private one has these as its
 * defaults in the other schemes.
 */
function privateAssignments(files) {
  const assignments = new Map();
  for (const file of files) {
    const text = readFileSync(join(ROOT, file), 'utf8');
    for (const match of text.matchAll(/(--_[a-z0-9-]+)\s*:\s*([^;{}]+);/g)) {
      const blocks = [...text.slice(0, match.index).matchAll(/const\s+([A-Za-z_$][\w$]*)\s*=\s*css`/g)];
      const block = blocks.at(-1)?.[1] ?? file;
      const list = assignments.get(match[1]) ?? [];
      list.push({ block, value: oneLine(match[2]) });
      assignments.set(match[1], list);
    }
  }
  return assignments;
}

function scanCss(files, propTags, partTags, exported) {
  const properties = new Map();
  const parts = new Map();
  const assigned = privateAssignments(files);
  for (const file of files) {
    const text = readFileSync(join(ROOT, file), 'utf8');
    for (const match of text.matchAll(/--kasu-[a-z0-9]+(?:-[a-z0-9]+)*/g)) {
      const name = match[0];
      const entry = properties.get(name) ?? { name, fallbacks: [], schemes: [], comments: [], files: new Set() };
      entry.files.add(file);
      const before = text.slice(Math.max(0, match.index - 8), match.index);
      if (/var\(\s*$/.test(before)) {
        let fallback = varFallback(text, match.index + name.length);
        // var(--kasu-x, var(--_kasu-scheme-x, #fff)): #fff, and the private property's values elsewhere (dark…).
        const nested = fallback === null ? null : /^var\(\s*(--_[a-z0-9-]+)\s*,([\s\S]*)\)$/.exec(fallback);
        if (nested) {
          fallback = oneLine(nested[2]);
          for (const { block, value } of assigned.get(nested[1]) ?? []) {
            if (!entry.schemes.some((scheme) => scheme.block === block)) entry.schemes.push({ block, value });
          }
        }
        if (fallback !== null && !entry.fallbacks.includes(fallback)) entry.fallbacks.push(fallback);
      }
      const comment = commentOnLine(text, match.index);
      if (comment && !entry.comments.includes(comment)) entry.comments.push(comment);
      properties.set(name, entry);
    }
    for (const match of text.matchAll(/\bpart=(["'])([^"'$]*)\1/g)) {
      for (const name of match[2].split(/\s+/).filter(Boolean)) {
        const entry = parts.get(name) ?? { name, files: new Set() };
        entry.files.add(file);
        parts.set(name, entry);
      }
    }
  }

  const cssProperties = [...properties.values()].sort((a, b) => compare(a.name, b.name)).map((entry) => {
    const [fallback, ...others] = entry.fallbacks;
    let description = propTags.get(entry.name) ?? entry.comments[0] ?? '';
    // "buttons, links, selected options (#0b5cad)": the default has a column of its own.
    const parenthetical = /\s*\(([^()]*)\)$/.exec(description);
    if (parenthetical && fallback !== undefined && fallback.startsWith(parenthetical[1].trim())) {
      description = description.slice(0, parenthetical.index).trim();
    }
    const notes = [
      ...entry.schemes.map(({ block, value }) => `${block}: \`${value}\``),
      ...(others.length ? [`other fallbacks in the source: ${others.map((other) => `\`${other}\``).join(', ')}`] : []),
    ];
    if (notes.length) description = `${description}${description ? ' ' : ''}(${notes.join('; ')})`;
    if (!description) warn(`custom property ${entry.name} has no @cssprop tag or comment`);
    return clean({ name: entry.name, description: description || undefined, default: fallback });
  });
  for (const name of propTags.keys()) {
    if (!properties.has(name) || [...properties.get(name).files].every((file) => file === ELEMENT_FILE && properties.get(name).fallbacks.length === 0)) {
      if (!properties.get(name)?.fallbacks.length) warn(`@cssprop ${name} is documented but no style reads it with var()`);
    }
  }

  const cssParts = [...parts.values()].sort((a, b) => compare(a.name, b.name)).map((entry) => {
    const inElement = entry.files.has(ELEMENT_FILE);
    const reachable = inElement || exported.has(entry.name);
    let description = partTags.get(entry.name) ?? '';
    if (!partTags.has(entry.name)) warn(`part "${entry.name}" (${[...entry.files].join(', ')}) has no @csspart tag`);
    if (!reachable) {
      warn(`part "${entry.name}" (${[...entry.files].join(', ')}) is not in ${ELEMENT_CLASS}'s exportparts: a page cannot style it`);
      description = `${description} (not exported to the page)`.trim();
    }
    return clean({ name: entry.name, description: description || undefined });
  });
  for (const name of partTags.keys()) {
    if (!parts.has(name)) warn(`@csspart ${name} is documented but no template has part="${name}"`);
  }
  return { cssProperties, cssParts };
}

/** The part names the element forwards from its steps (`exportparts=${STEP_PARTS}` and literal lists). */
function exportedParts(sourceFile) {
  const text = sourceFile.getFullText();
  const names = new Set();
  const add = (list) => {
    for (const item of list.split(',')) {
      const [inner, outer] = item.split(':').map((part) => part.trim());
      if (outer || inner) names.add(outer || inner);
    }
  };
  for (const match of text.matchAll(/exportparts=\$\{\s*([A-Za-z_$][\w$]*)\s*\}/g)) {
    const value = constantString(ts.factory.createIdentifier(match[1]), sourceFile);
    if (value === null) warn(`${ELEMENT_FILE}: exportparts=\${${match[1]}} is not a constant string`);
    else add(value);
  }
  for (const match of text.matchAll(/exportparts=(["'])([^"'$]*)\1/g)) add(match[2]);
  return names;
}

// ---------- the entry: exports and the tag ----------

function describeEntry(sourceFile) {
  const exports = [];
  let tagName = null;
  const visit = (node) => {
    if (ts.isExportDeclaration(node) && !node.isTypeOnly && node.exportClause && ts.isNamedExports(node.exportClause)) {
      for (const element of node.exportClause.elements) {
        if (element.isTypeOnly) continue;
        exports.push(element.name.text);
      }
    }
    if (ts.isCallExpression(node)) {
      const callee = node.expression.getText(sourceFile);
      const [tag, cls] = node.arguments;
      if ((callee === 'define' || callee === 'customElements.define') && tag && ts.isStringLiteral(tag) && cls?.getText(sourceFile) === ELEMENT_CLASS) {
        tagName = tag.text;
      }
    }
    node.forEachChild(visit);
  };
  sourceFile.forEachChild(visit);
  return { exports: exports.sort(compare), tagName, description: fileDoc(sourceFile) };
}

/** The comment at the top of a file. */
function fileDoc(sourceFile) {
  const text = sourceFile.getFullText();
  const ranges = ts.getLeadingCommentRanges(text, 0) ?? [];
  const first = ranges.find((range) => text.slice(range.pos, range.pos + 3) === '/**');
  if (!first) return '';
  const body = text.slice(first.pos + 3, first.end - 2).split('\n').map((line) => line.replace(/^\s*\* ?/, ''));
  // Up to the first indented example: the prose only.
  const proseLines = [];
  for (const line of body) {
    if (/^\s{2,}\S/.test(line)) break;
    proseLines.push(line);
  }
  return prose(proseLines.join('\n'));
}

// ---------- the manifest ----------

const compare = (a, b) => (a < b ? -1 : a > b ? 1 : 0);

/** The object without undefined or empty-string fields (stable JSON). */
function clean(object) {
  return Object.fromEntries(Object.entries(object).filter(([, value]) => value !== undefined && value !== ''));
}

export function analyse() {
  const prog = program();
  const checker = prog.getTypeChecker();
  const source = (file) => {
    const sourceFile = prog.getSourceFile(join(ROOT, file));
    if (!sourceFile) throw new Error(`${file} is not part of the program`);
    return sourceFile;
  };
  const elementSource = source(ELEMENT_FILE);
  const element = describeElement(checker, elementSource);
  const events = describeEvents(checker, source(EVENTS_FILE));
  const entry = describeEntry(source(ENTRY));
  const { cssProperties, cssParts } = scanCss(widgetFiles(), element.propTags, element.partTags, exportedParts(elementSource));

  for (const event of events) {
    if (!element.firesTags.has(event.eventName)) warn(`event ${event.eventName} has no @fires tag on ${ELEMENT_CLASS}`);
    if (!elementSource.getFullText().includes(`new ${event.className}(`)) warn(`${ELEMENT_FILE} never dispatches ${event.className}`);
  }
  for (const name of element.firesTags.keys()) {
    if (!events.some((event) => event.eventName === name)) warn(`@fires ${name} is documented but ${EVENTS_FILE} has no such event`);
  }
  if (!entry.tagName) warn(`${ENTRY} does not define a tag for ${ELEMENT_CLASS}`);

  return { element, events, entry, cssProperties, cssParts };
}

export function manifest(model = analyse()) {
  const { element, events, entry, cssProperties, cssParts } = model;
  const ref = (name) => ({ name, module: MODULE_PATH });
  const elementDeclaration = clean({
    kind: 'class',
    customElement: true,
    name: ELEMENT_CLASS,
    tagName: entry.tagName ?? undefined,
    description: jsDocOf(element.cls),
    superclass: element.superName ? { name: element.superName, package: element.superName === 'LitElement' ? 'lit' : undefined } : undefined,
    attributes: element.attributes.sort((a, b) => compare(a.name, b.name)),
    members: [...element.fields, ...element.methods].sort((a, b) => compare(a.name, b.name) || compare(a.kind, b.kind)),
    events: events.map((event) => clean({
      name: event.eventName,
      description: element.firesTags.get(event.eventName) ?? event.description,
      type: { text: event.className, references: [{ ...ref(event.className), start: 0, end: event.className.length }] },
    })),
    cssParts,
    cssProperties,
  });
  const eventDeclarations = events.map((event) => clean({
    kind: 'class',
    name: event.className,
    description: [event.description, `Type \`${event.eventName}\`; bubbles and is composed.`].filter(Boolean).join(' '),
    superclass: { name: 'CustomEvent', package: 'global:' },
    members: [
      { kind: 'field', name: 'detail', type: { text: detailShape(event) }, readonly: true, description: `\`${event.detailTypeText}\`` },
      { kind: 'field', name: 'eventName', static: true, readonly: true, type: { text: 'string' }, default: JSON.stringify(event.eventName) },
    ],
  }));
  const declared = new Set([ELEMENT_CLASS, ...events.map((event) => event.className)]);
  return {
    schemaVersion: SCHEMA_VERSION,
    modules: [
      clean({
        kind: 'javascript-module',
        path: MODULE_PATH,
        description: entry.description || undefined,
        declarations: [elementDeclaration, ...eventDeclarations.sort((a, b) => compare(a.name, b.name))],
        exports: [
          ...entry.exports.filter((name) => declared.has(name)).map((name) => ({ kind: 'js', name, declaration: ref(name) })),
          ...(entry.tagName ? [{ kind: 'custom-element-definition', name: entry.tagName, declaration: ref(ELEMENT_CLASS) }] : []),
        ],
      }),
    ],
  };
}

function detailShape(event) {
  if (!event.detail.length) return event.detailTypeText;
  return `{ ${event.detail.map((field) => `${field.name}${field.optional ? '?' : ''}: ${field.type}`).join('; ')} }`;
}

// ---------- markdown ----------

const cell = (text) => String(text ?? '').replace(/\|/g, '\\|').replace(/\n+/g, ' ');
const code = (text) => `\`${String(text).replace(/\|/g, '\\|')}\``;

export const SECTIONS = ['attributes', 'methods', 'events', 'parts', 'properties'];

/** Markdown tables of the element's API, one per section, from the same model as the manifest. */
export function markdownTables(model = analyse()) {
  const { element, events, cssProperties, cssParts } = model;
  const attributes = ['| Attribute | Property | Type | Default | Meaning |', '|---|---|---|---|---|'];
  for (const attribute of [...element.attributes].sort((a, b) => compare(a.name, b.name))) {
    const value = attribute.default === undefined ? undefined : JSON.parse(attribute.default);
    attributes.push(
      `| ${code(attribute.name)} | ${attribute.fieldName ? code(attribute.fieldName) : ''} | ${attribute.type ? code(attribute.type.text) : ''} | ${value === undefined ? '' : code(value === '' ? "''" : value)} | ${cell(attribute.description)} |`,
    );
  }
  const methods = ['| Method | Returns | Meaning |', '|---|---|---|'];
  if (!element.methods.length) methods.push('| (none) | | |');
  for (const method of [...element.methods].sort((a, b) => compare(a.name, b.name))) {
    const params = (method.parameters ?? []).map((p) => `${p.name}${p.optional ? '?' : ''}: ${p.type.text}`).join(', ');
    const paramDocs = (method.parameters ?? []).filter((p) => p.description).map((p) => `${code(p.name)}: ${p.description}`);
    methods.push(`| ${code(`${method.name}(${params})`)} | ${code(method.return?.type?.text ?? 'void')} | ${cell([method.description, ...paramDocs].filter(Boolean).join(' '))} |`);
  }
  const eventRows = ['| Event (bubbles, composed) | Class | `detail` | When |', '|---|---|---|---|'];
  for (const event of events) {
    const fields = event.detail
      .map((field) => `${code(`${field.name}${field.optional ? '?' : ''}: ${field.type}`)}${field.description ? ` ${cell(field.description)}` : ''}`)
      .join('<br>');
    const when = (element.firesTags.get(event.eventName) ?? event.description).replace(/^`\{[^`]*\}`\s*:\s*/, '');
    eventRows.push(`| ${code(event.eventName)} | ${code(event.className)} | ${fields} | ${cell(when)} |`);
  }
  const parts = ['| Part (`::part()`) | What |', '|---|---|'];
  for (const part of cssParts) parts.push(`| ${code(part.name)} | ${cell(part.description)} |`);
  const properties = ['| Custom property | Default | What |', '|---|---|---|'];
  for (const property of cssProperties) {
    properties.push(`| ${code(property.name)} | ${property.default !== undefined ? code(property.default) : ''} | ${cell(property.description)} |`);
  }
  return { attributes, methods, events: eventRows, parts, properties };
}

export function markdown(model = analyse(), sections = SECTIONS) {
  const tables = markdownTables(model);
  return `${sections.map((section) => tables[section].join('\n')).join('\n\n')}\n`;
}

/**
 * A document with its marked sections filled in: the lines between `<!-- custom-elements:events -->` and
 * `<!-- /custom-elements:events -->` become the events table (likewise attributes, methods, parts, properties).
 */
export function fillDocument(text, model) {
  const tables = markdownTables(model);
  return text.replace(
    /(<!-- custom-elements:([a-z]+) -->\n)[\s\S]*?(<!-- \/custom-elements:\2 -->)/g,
    (whole, open, section, close) => (tables[section] ? `${open}${tables[section].join('\n')}\n${close}` : whole),
  );
}

// ---------- command line ----------

const USAGE = 'usage: node scripts/custom-elements.mjs [--check] [--docs FILE]... | --markdown[=SECTION,...] | --stdout\n';

function parseArgs(argv) {
  const options = { check: false, stdout: false, markdown: null, docs: [] };
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    if (arg === '--check') options.check = true;
    else if (arg === '--stdout') options.stdout = true;
    else if (arg === '--markdown') options.markdown = SECTIONS;
    else if (arg.startsWith('--markdown=')) options.markdown = arg.slice('--markdown='.length).split(',');
    else if (arg === '--docs' && argv[i + 1]) options.docs.push(argv[(i += 1)]);
    else if (arg.startsWith('--docs=')) options.docs.push(arg.slice('--docs='.length));
    else return { error: `unknown option ${arg}` };
  }
  const badSection = options.markdown?.find((section) => !SECTIONS.includes(section));
  if (badSection) return { error: `unknown section ${badSection} (${SECTIONS.join(', ')})` };
  return options;
}

/** Writes `text` to `file`, or with `check` says whether the file already holds it. */
function writeOrCheck(file, text, check, how) {
  const name = toPosix(relative(ROOT, file));
  const current = existsSync(file) ? readFileSync(file, 'utf8') : null;
  if (!check) {
    if (current !== text) writeFileSync(file, text);
    process.stdout.write(`${current === text ? 'unchanged' : 'wrote'} ${name}\n`);
    return true;
  }
  if (current === text) {
    process.stdout.write(`${name} is up to date\n`);
    return true;
  }
  if (current === null) {
    process.stderr.write(`${name} is missing: run ${how}\n`);
    return false;
  }
  const have = current.split('\n');
  const want = text.split('\n');
  const line = want.findIndex((content, index) => content !== have[index]);
  process.stderr.write(
    `${name} is out of date (first difference at line ${line + 1}:\n  on disk:   ${have[line] ?? '(end of file)'}\n  generated: ${want[line] ?? '(end of file)'})\nrun ${how}\n`,
  );
  return false;
}

function main(argv) {
  const options = parseArgs(argv);
  if (options.error) {
    process.stderr.write(`${options.error}\n${USAGE}`);
    return 2;
  }
  const model = analyse();
  for (const message of warnings) process.stderr.write(`custom-elements: warning: ${message}\n`);
  if (options.markdown) {
    process.stdout.write(markdown(model, options.markdown));
    return 0;
  }
  const json = `${JSON.stringify(manifest(model), null, 2)}\n`;
  if (options.stdout) {
    process.stdout.write(json);
    return 0;
  }
  const how = `node scripts/custom-elements.mjs${options.docs.map((doc) => ` --docs ${doc}`).join('')}`;
  let ok = writeOrCheck(OUTPUT, json, options.check, how);
  for (const doc of options.docs) {
    const file = join(process.cwd(), doc);
    if (!existsSync(file)) {
      process.stderr.write(`${doc} does not exist\n`);
      ok = false;
      continue;
    }
    ok = writeOrCheck(file, fillDocument(readFileSync(file, 'utf8'), model), options.check, how) && ok;
  }
  return ok ? 0 : 1;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  process.exitCode = main(process.argv.slice(2));
}
