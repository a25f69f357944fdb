package bh.validator;

import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.context.support.ConceptValidationOptions;
import ca.uhn.fhir.context.support.LookupCodeRequest;
import ca.uhn.fhir.context.support.ValidationSupportContext;
import java.util.List;
import org.hl7.fhir.common.hapi.validation.support.CommonCodeSystemsTerminologyService;

/**
 * HAPI's CommonCodeSystemsTerminologyService, except that a valid BCP-47 tag outside the "Common Languages" value
 * set is information, not an error.
 *
 * <p>Why: every R4 binding to http://hl7.org/fhir/ValueSet/languages (Patient.communication.language,
 * Resource.language, Attachment.language ...) is PREFERRED, with all-languages (any BCP-47 tag) as its max value
 * set. The stock service answers "Code vi is not in valueset" with severity ERROR whatever the binding strength,
 * and the instance validator passes that severity through (hapi-fhir issue #7959, open; see also #4152). Here a
 * valid tag gets an information answer, which the validator takes as "valid", so it reports nothing; a string
 * that is not a BCP-47 tag stays an error.
 */
final class PreferredLanguagesTerminologyService extends CommonCodeSystemsTerminologyService {

  PreferredLanguagesTerminologyService(FhirContext ctx) {
    super(ctx);
  }

  /** The parent's messages: HAPI looks them up under the class name, which a subclass changes. */
  @Override
  protected String getErrorMessage(String errorCode, String firstParam, String secondParam) {
    return getFhirContext()
        .getLocalizer()
        .getMessage(CommonCodeSystemsTerminologyService.class, errorCode, firstParam, secondParam);
  }

  @Override
  public CodeValidationResult validateCode(
      ValidationSupportContext context,
      ConceptValidationOptions options,
      String codeSystem,
      String code,
      String display,
      String valueSetUrl) {
    CodeValidationResult result = super.validateCode(context, options, codeSystem, code, display, valueSetUrl);
    if (result == null
        || result.getSeverity() != IssueSeverity.ERROR
        || !LANGUAGES_VALUESET_URL.equals(valueSetUrl)) {
      return result;
    }
    LookupCodeResult lookup = lookupCode(context, new LookupCodeRequest(LANGUAGES_CODESYSTEM_URL, code));
    if (lookup == null || !lookup.isFound()) {
      return result;
    }
    String message =
        result.getMessage()
            + " (it is a valid BCP-47 tag, in "
            + ALL_LANGUAGES_VALUESET_URL
            + ", the max value set of this preferred binding)";
    return new CodeValidationResult()
        .setSeverity(IssueSeverity.INFORMATION)
        .setMessage(message)
        .setIssues(
            List.of(
                new CodeValidationIssue(
                    message,
                    IssueSeverity.INFORMATION,
                    CodeValidationIssueCode.INVALID,
                    CodeValidationIssueCoding.NOT_IN_VS)));
  }
}
