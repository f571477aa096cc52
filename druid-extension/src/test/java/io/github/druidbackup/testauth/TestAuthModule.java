package io.github.druidbackup.testauth;

import com.fasterxml.jackson.databind.Module;
import com.fasterxml.jackson.databind.jsontype.NamedType;
import com.fasterxml.jackson.databind.module.SimpleModule;
import com.google.inject.Binder;
import org.apache.druid.initialization.DruidModule;

import java.util.List;

/**
 * Test only, never shipped: Druid's authentication and authorization for the extension's cluster tests, since
 * druid-basic-security is not on Maven Central. A request carrying {@code X-Test-Identity} is authenticated as that
 * identity and handed to the {@code testDeny} authorizer, which refuses everything; every other request goes on
 * down the authenticator chain, so the cluster's own traffic is untouched.
 * <pre>
 * druid.auth.authenticatorChain=["testHeader","allowAll"]
 * druid.auth.authenticator.testHeader.type=testHeader
 * druid.auth.authenticator.testHeader.authorizerName=deny
 * druid.auth.authenticator.allowAll.type=allowAll
 * druid.auth.authorizers=["allowAll","deny"]
 * druid.auth.authorizer.allowAll.type=allowAll
 * druid.auth.authorizer.deny.type=testDeny
 * </pre>
 */
public class TestAuthModule implements DruidModule
{
  @Override
  public List<? extends Module> getJacksonModules()
  {
    return List.of(new SimpleModule("druid-backup-test-auth").registerSubtypes(
        new NamedType(HeaderAuthenticator.class, "testHeader"),
        new NamedType(DenyAuthorizer.class, "testDeny")
    ));
  }

  @Override
  public void configure(Binder binder)
  {
  }
}
