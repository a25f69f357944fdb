package bh.validator;

import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.context.support.DefaultProfileValidationSupport;
import ca.uhn.fhir.context.support.IValidationSupport;
import ca.uhn.fhir.validation.FhirValidator;
import ca.uhn.fhir.validation.ResultSeverityEnum;
import ca.uhn.fhir.validation.SingleValidationMessage;
import ca.uhn.fhir.validation.ValidationResult;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.Function;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.hl7.fhir.common.hapi.validation.support.InMemoryTerminologyServerValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.SnapshotGeneratingValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.UnknownCodeSystemWarningValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.ValidationSupportChain;
import org.hl7.fhir.common.hapi.validation.validator.FhirInstanceValidator;
import org.hl7.fhir.r4.model.OperationOutcome;

/**
 * Validate FHIR R4 files offline with HAPI's FhirInstanceValidator (the engine of HL7's validator_cli).
 *
 * <pre>
 * java -jar bh-hl7-validator.jar [--unknown-code-system-severity information|warning|error] [--threads N] [--verbose] FILE...
 * </pre>
 *
 * <p>A {@code .json} or {@code .xml} file is one resource (a Bundle is validated whole, entries included); a
 * {@code .ndjson} file holds one resource per line. One JVM validates every file given, so the R4 definitions are
 * loaded once; {@code --threads} (default: one per CPU) validates several resources at a time.
 *
 * <p>Output, on stdout, one JSON object per line: for each resource validated
 * {@code {"file": ..., "line": N or null, "resource": "Type/id", "outcome": OperationOutcome}}, then
 * {@code {"summary": {"files", "resources", "fatal", "error", "warning", "information", "seconds"}}}.
 * Log lines go to stderr ({@code --verbose} also names each input there before validating it).
 *
 * <p>Exit code: 0 no error or fatal issue, 1 at least one, 2 bad usage or an unreadable file.
 *
 * <p>What is checked (docs/conformance.md): structure, cardinality, data types, FHIRPath invariants, and
 * bindings to the value sets of the R4 core specification. Code systems outside it (LOINC, SNOMED CT, RxNorm,
 * ICD-10-CM ...) cannot be checked offline: codes in them are reported at the severity chosen above (default
 * information), never as errors unless asked. Profiles the R4 core does not define (US Core) are reported as
 * not checked, a warning.
 */
public final class Main {
  private static final Pattern RESOURCE_TYPE = Pattern.compile("\"resourceType\"\\s*:\\s*\"([A-Za-z]+)\"");
  private static final Pattern XML_ROOT = Pattern.compile("<([A-Za-z]+)[\\s>]");
  private static final Pattern JSON_ID = Pattern.compile("^\\{\\s*\"resourceType\"\\s*:\\s*\"[A-Za-z]+\"\\s*,\\s*\"id\"\\s*:\\s*\"([^\"]+)\"");
  private static final Pattern XML_ID = Pattern.compile("<id\\s+value=\"([^\"]+)\"");
  private static final String USAGE =
      "usage: bh-hl7-validator [--unknown-code-system-severity information|warning|error] [--threads N]"
          + " [--verbose] FILE...";

  private final FhirContext ctx;
  private final FhirValidator validator;
  private final Writer out;
  private final Map<ResultSeverityEnum, Integer> counts = new EnumMap<>(ResultSeverityEnum.class);
  private final boolean verbose;

  private Main(IValidationSupport.IssueSeverity unknownCodeSystemSeverity, Writer out, boolean verbose) {
    this.ctx = FhirContext.forR4Cached();
    this.out = out;
    this.verbose = verbose;
    UnknownCodeSystemWarningValidationSupport unknownCodeSystems = new UnknownCodeSystemWarningValidationSupport(ctx);
    unknownCodeSystems.setNonExistentCodeSystemSeverity(unknownCodeSystemSeverity);
    // Order matters: the chain asks each member in turn. The R4 core definitions first, then the code systems
    // HAPI knows without a server (UCUM, BCP-47 languages, MIME types, ISO 3166/4217, USPS states; see
    // PreferredLanguagesTerminologyService for the one change made), then expansion of the core value sets in
    // memory; the last member answers for any code system still unknown (LOINC, SNOMED CT ...).
    ValidationSupportChain chain =
        new ValidationSupportChain(
            new DefaultProfileValidationSupport(ctx),
            new PreferredLanguagesTerminologyService(ctx),
            new InMemoryTerminologyServerValidationSupport(ctx),
            new SnapshotGeneratingValidationSupport(ctx),
            unknownCodeSystems);
    FhirInstanceValidator instanceValidator = new FhirInstanceValidator(chain);
    // A profile we do not have (US Core) is a warning, not an error: the resource is still checked against
    // the base definition of its type.
    instanceValidator.setErrorForUnknownProfiles(false);
    this.validator = ctx.newValidator();
    this.validator.setValidateAgainstStandardSchema(false); // the instance validator covers the schema and more
    this.validator.setValidateAgainstStandardSchematron(false);
    this.validator.registerValidatorModule(instanceValidator);
  }

  public static void main(String[] args) throws IOException, InterruptedException {
    IValidationSupport.IssueSeverity unknownSeverity = IValidationSupport.IssueSeverity.INFORMATION;
    boolean verbose = false;
    int threads = Runtime.getRuntime().availableProcessors();
    List<Path> files = new ArrayList<>();
    for (int i = 0; i < args.length; i++) {
      String arg = args[i];
      switch (arg) {
        case "--unknown-code-system-severity" ->
            unknownSeverity =
                parse(arg, next(args, ++i, arg), v -> IValidationSupport.IssueSeverity.valueOf(v.toUpperCase(Locale.ROOT)));
        case "--threads" -> threads = Math.max(1, parse(arg, next(args, ++i, arg), Integer::parseInt));
        case "--verbose" -> verbose = true;
        case "-h", "--help" -> {
          System.err.println(USAGE);
          System.exit(0);
        }
        default -> {
          if (arg.startsWith("--")) {
            fail("unknown option " + arg + " (" + USAGE + ")");
          }
          files.add(Path.of(arg));
        }
      }
    }
    if (files.isEmpty()) {
      fail("no input files (" + USAGE + ")");
    }
    for (Path file : files) {
      if (!Files.isReadable(file)) {
        fail("cannot read " + file);
      }
    }
    long started = System.nanoTime();
    Writer stdout = new BufferedWriter(new OutputStreamWriter(System.out, StandardCharsets.UTF_8));
    Main main = new Main(unknownSeverity, stdout, verbose);
    List<Unit> units = new ArrayList<>();
    for (Path file : files) {
      units.addAll(units(file));
    }
    main.validateAll(units, threads);
    main.writeSummary(files.size(), units.size(), (System.nanoTime() - started) / 1e9);
    stdout.flush();
    System.exit(main.count(ResultSeverityEnum.ERROR) + main.count(ResultSeverityEnum.FATAL) > 0 ? 1 : 0);
  }

  private static String next(String[] args, int i, String option) {
    if (i >= args.length) {
      fail(option + " needs a value");
    }
    return args[i];
  }

  private static <T> T parse(String option, String value, Function<String, T> parser) {
    try {
      return parser.apply(value);
    } catch (IllegalArgumentException e) { // NumberFormatException included
      fail("bad value for " + option + ": " + value);
      throw e; // not reached: fail() exits
    }
  }

  /** Bad usage or an unreadable input: one line on stderr, exit code 2. */
  private static void fail(String message) {
    System.err.println("bh-hl7-validator: " + message);
    System.exit(2);
  }

  /** One resource to validate: a whole .json/.xml file, or one line of an .ndjson file. */
  private record Unit(Path file, Integer line, String text) {}

  private static List<Unit> units(Path file) throws IOException {
    String text = Files.readString(file, StandardCharsets.UTF_8);
    List<Unit> units = new ArrayList<>();
    if (file.getFileName().toString().endsWith(".ndjson")) {
      String[] lines = text.split("\n", -1);
      for (int i = 0; i < lines.length; i++) {
        if (!lines[i].isBlank()) {
          units.add(new Unit(file, i + 1, lines[i]));
        }
      }
    } else {
      units.add(new Unit(file, null, text));
    }
    return units;
  }

  /** Validate every unit on `threads` threads (FhirValidator is thread-safe); results are written in input order. */
  private void validateAll(List<Unit> units, int threads) throws IOException, InterruptedException {
    ExecutorService pool = Executors.newFixedThreadPool(threads);
    try {
      List<Future<String>> lines = new ArrayList<>();
      for (Unit unit : units) {
        lines.add(pool.submit(() -> validateOne(unit)));
      }
      for (Future<String> line : lines) {
        try {
          out.write(line.get());
        } catch (ExecutionException e) {
          throw new IllegalStateException("validation crashed", e.getCause());
        }
      }
    } finally {
      pool.shutdownNow();
    }
  }

  private String validateOne(Unit unit) {
    if (verbose) { // tells which input a HAPI log line on stderr belongs to
      System.err.println("bh-hl7-validator: " + unit.file() + (unit.line() == null ? "" : ":" + unit.line()));
    }
    OperationOutcome outcome = new OperationOutcome();
    try {
      ValidationResult result = validator.validateWithResult(unit.text());
      for (SingleValidationMessage message : result.getMessages()) {
        count(message.getSeverity(), 1);
      }
      result.populateOperationOutcome(outcome);
    } catch (RuntimeException e) { // an unparseable input is a finding about that input, not a crash of the run
      count(ResultSeverityEnum.FATAL, 1);
      outcome
          .addIssue()
          .setSeverity(OperationOutcome.IssueSeverity.FATAL)
          .setCode(OperationOutcome.IssueType.STRUCTURE)
          .setDiagnostics(e.getClass().getSimpleName() + ": " + e.getMessage());
    }
    return "{\"file\":"
        + quote(unit.file().toString())
        + ",\"line\":"
        + (unit.line() == null ? "null" : unit.line().toString())
        + ",\"resource\":"
        + quote(label(unit.text()))
        + ",\"outcome\":"
        + ctx.newJsonParser().encodeResourceToString(outcome) // parsers are not thread-safe: one per call
        + "}\n";
  }

  private void writeSummary(int files, int resources, double seconds) throws IOException {
    out.write(
        String.format(
            Locale.ROOT,
            "{\"summary\":{\"files\":%d,\"resources\":%d,\"fatal\":%d,\"error\":%d,\"warning\":%d,"
                + "\"information\":%d,\"seconds\":%.2f}}%n",
            files,
            resources,
            count(ResultSeverityEnum.FATAL),
            count(ResultSeverityEnum.ERROR),
            count(ResultSeverityEnum.WARNING),
            count(ResultSeverityEnum.INFORMATION),
            seconds));
  }

  private synchronized void count(ResultSeverityEnum severity, int n) {
    counts.merge(severity, n, Integer::sum);
  }

  private synchronized int count(ResultSeverityEnum severity) {
    return counts.getOrDefault(severity, 0);
  }

  /** "Type/id" of the top-level resource, read from the text (no second parse). */
  private static String label(String text) {
    String trimmed = text.stripLeading();
    String type = null;
    String id = null;
    if (trimmed.startsWith("<")) {
      Matcher root = XML_ROOT.matcher(trimmed.replaceFirst("^<\\?xml[^>]*\\?>\\s*", ""));
      type = root.lookingAt() ? root.group(1) : null;
      Matcher idMatch = XML_ID.matcher(trimmed);
      id = idMatch.find() ? idMatch.group(1) : null;
    } else {
      Matcher typeMatch = RESOURCE_TYPE.matcher(trimmed);
      type = typeMatch.find() ? typeMatch.group(1) : null;
      Matcher idMatch = JSON_ID.matcher(trimmed);
      id = idMatch.find() ? idMatch.group(1) : null;
    }
    return (type == null ? "?" : type) + (id == null ? "" : "/" + id);
  }

  private static String quote(String value) {
    StringBuilder sb = new StringBuilder("\"");
    for (char c : value.toCharArray()) {
      switch (c) {
        case '"' -> sb.append("\\\"");
        case '\\' -> sb.append("\\\\");
        case '\n' -> sb.append("\\n");
        case '\r' -> sb.append("\\r");
        case '\t' -> sb.append("\\t");
        default -> {
          if (c < 0x20) {
            sb.append(String.format(Locale.ROOT, "\\u%04x", (int) c));
          } else {
            sb.append(c);
          }
        }
      }
    }
    return sb.append('"').toString();
  }
}
